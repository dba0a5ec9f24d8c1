"""Real participants in a real browser (Debian's chromium, driven by Playwright) on the real server: two browser
contexts and one worker ID, Prolific and MTurk links against a fake platform on 127.0.0.1, the keyboard's choose
then confirm, the copy button, and every worker page at desktop and phone sizes (screenshots in test-artifacts/,
with every button inside the phone's screen)."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from survey_app.importer import create_study, load_bundle, settings_from
from survey_app.migrate import upgrade
from survey_app.models import Answer, Hit, Worker
from survey_app.server import ServerProcess as Server
from survey_app.studies import set_run_status

from .test_browser import ARTIFACTS, CHROMIUM, FLAGS

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


class FakePlatform:
    """A stand-in for MTurk's externalSubmit and Prolific's completion URL: records every request, answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, form or query)
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                if url.path == "/favicon.ico":  # the browser's own request, not the survey's
                    return self.send_error(404)
                platform.requests.append(("GET", url.path, parse_qs(url.query)))
                self._reply()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                platform.requests.append(("POST", urlparse(self.path).path, parse_qs(body)))
                self._reply()

            def _reply(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<p>recorded by the fake platform</p>")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform():
    fake = FakePlatform()
    yield fake
    fake.close()


@pytest.fixture
def served(tmp_path, bundle_dir, platform, monkeypatch):
    """One server with a study for each way in: lab, rated, MTurk, Prolific, and one whose work is all taken."""
    url = f"sqlite:///{tmp_path / 'survey.db'}"
    upgrade(url)
    engine = create_engine(url)
    bundle = load_bundle(bundle_dir)
    studies = {
        "lab": {"hit_size": 3, "consent_text": "We study how recognisable computer-made faces are.\n\n"
                "You may stop at any time.", "researcher_contact": "Dr Ada Example, ada@example.org",
                "ethics_approval": "University IRB 2026-042", "pay": "£1.20 for about 6 minutes"},
        "rated": {"hit_size": 2, "confidence_scale": 5},
        "mturk": {"hit_size": 2},
        "prolific": {"hit_size": 2, "completion_url": f"{platform.base}/submissions/complete?cc=C0DE1"},
        "full": {"hit_size": 60, "answers_per_item": 1},
    }
    slugs = {}
    with Session(engine) as db:
        for name, settings in studies.items():
            study = create_study(db, bundle, name, settings_from(settings), "test")
            set_run_status(db, study, 1, "open")
            slugs[name] = study.slug
        db.commit()
    monkeypatch.setenv("MI_SURVEY_MTURK_SUBMIT_TO", platform.base)  # the server process inherits it
    server = Server(url, workers=1, threads=4)
    yield server, slugs, engine
    server.stop()
    engine.dispose()


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def answer_by_keys(page, total: int, key="2") -> None:
    """Every task of the HIT by keyboard alone: a digit chooses, Enter confirms."""
    for number in range(1, total + 1):
        page.wait_for_selector(f"text=Task {number} of {total}")
        page.keyboard.press(key)
        assert page.locator(f"input[name=choice][value='{key}']").is_checked()
        page.keyboard.press("Enter")
    page.wait_for_selector(".completion-code")


@pytest.mark.slow
def test_a_second_browser_with_a_workers_id_sees_nothing_of_theirs_until_it_gives_the_resume_code(served, browser):
    server, slugs, engine = served
    slug = slugs["lab"]
    first = browser.new_context(viewport=DESKTOP)
    first.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    mine = first.new_page()
    mine.goto(f"{server.base}/s/{slug}/?workerId=W1")
    mine.check("input[name=consent]")
    mine.click("text=Start")
    mine.wait_for_selector("text=Task 1 of 3")
    resume = mine.locator(".resume-code").text_content()
    mine.keyboard.press("3")  # choose...
    mine.keyboard.press("1")  # ...change one's mind: only the confirmed choice is sent
    assert mine.locator("#send").inner_text() == "Confirm: Face 1"
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Answer)) == 0
    mine.keyboard.press("Enter")
    mine.wait_for_selector("text=Task 2 of 3")
    mine.keyboard.press("0")  # not in this lineup
    mine.keyboard.press("Enter")
    mine.wait_for_selector("text=Task 3 of 3")
    mine.keyboard.press("5")
    mine.keyboard.press("Enter")
    mine.wait_for_selector(".completion-code")
    code = mine.locator(".completion-code").inner_text()
    mine.click("button.copy")
    mine.wait_for_selector("text=Copied")
    assert mine.evaluate("navigator.clipboard.readText()") == code
    with Session(engine) as db:
        assert [tuple(r) for r in db.execute(select(Answer.choice).order_by(Answer.id))] == [(0,), (-1,), (4,)]

    other = browser.new_context(viewport=DESKTOP)
    theirs = other.new_page()
    theirs.goto(f"{server.base}/s/{slug}/?workerId=W1")
    theirs.check("input[name=consent]")
    theirs.click("text=Start")
    theirs.wait_for_selector("text=already started this study in another browser")
    assert code not in theirs.content()
    for path in ("task", "done", "task?more=1"):
        theirs.goto(f"{server.base}/s/{slug}/{path}")
        assert code not in theirs.content() and "Task " not in theirs.content()
        assert theirs.locator("input[name=consent]").count() == 1  # sent back to consent
    theirs.goto(f"{server.base}/s/{slug}/?workerId=W1")
    theirs.click("text=Continuing from another browser or device?")
    theirs.fill("input[name=resume_code]", resume)
    theirs.check("input[name=consent]")
    theirs.click("text=Start")
    theirs.wait_for_selector(".completion-code")
    assert theirs.locator(".completion-code").inner_text() == code  # now they are W1, and continue as W1
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Worker)) == 1
    first.close()
    other.close()


@pytest.mark.slow
def test_mturk_preview_accept_and_submit_to_the_platform(served, browser, platform):
    server, slugs, engine = served
    slug = slugs["mturk"]
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(f"{server.base}/s/{slug}/?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1")
    page.wait_for_selector("text=This is a preview")
    assert page.locator("form").count() == 0
    assert all(page.locator("img").nth(i).evaluate("img => img.naturalWidth") > 0
               for i in range(page.locator("img").count()))
    page.screenshot(path=str(ARTIFACTS / "mturk-preview-desktop.png"), full_page=True)
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Worker)) == 0
    query = urlencode({"workerId": "AWORKER1", "assignmentId": "ASSIGN1", "hitId": "H1",
                       "turkSubmitTo": platform.base})
    framed = page.context.new_page()  # MTurk shows the page in a frame: it offers to open in its own tab
    framed.set_content(f'<iframe src="{server.base}/s/{slug}/?{query}" width="900" height="700"></iframe>')
    framed.frame_locator("iframe").locator("#framed a").wait_for(state="visible")
    framed.close()
    page.goto(f"{server.base}/s/{slug}/?{query}")
    assert not page.is_visible("#framed")
    page.check("input[name=consent]")
    page.click("text=Start")
    answer_by_keys(page, 2)
    code = page.locator(".completion-code").inner_text()
    page.click("text=Submit the HIT to MTurk")
    page.wait_for_selector("text=recorded by the fake platform")
    assert platform.requests == [("POST", "/mturk/externalSubmit", {"assignmentId": ["ASSIGN1"],
                                                                     "completion_code": [code]})]
    with Session(engine) as db:
        hit = db.scalars(select(Hit)).one()
        assert (hit.platform_assignment, hit.completion_code) == ("ASSIGN1", code)


@pytest.mark.slow
def test_prolific_ends_at_the_studys_completion_url(served, browser, platform):
    server, slugs, engine = served
    page = browser.new_context(viewport=DESKTOP).new_page()
    query = urlencode({"PROLIFIC_PID": "60a1b2c3d4e5f60718293a4b", "STUDY_ID": "S1", "SESSION_ID": "SESS1"})
    page.goto(f"{server.base}/s/{slugs['prolific']}/?{query}")
    page.check("input[name=consent]")
    page.click("text=Start")
    for number in (1, 2):
        page.wait_for_selector(f"text=Task {number} of 2")
        page.locator("label.face").nth(1).click()
        page.click("button.send")
    page.wait_for_selector("text=recorded by the fake platform")
    assert platform.requests == [("GET", "/submissions/complete", {"cc": ["C0DE1"]})]
    with Session(engine) as db:
        hit = db.scalars(select(Hit)).one()
        assert (hit.platform, hit.platform_assignment, hit.platform_hit) == ("prolific", "SESS1", "S1")
        assert hit.completion_code


def check_fits(page, name: str) -> None:
    """Every button, face and rating of the page inside the screen, nothing scrolling sideways."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), name
    targets = page.locator("button:visible, label.face, label.absent, #confidence label:visible, "
                           "img[alt='Image to match']")
    for k in range(targets.count()):
        box = targets.nth(k).bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0, (name, k, box)
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, (name, k, box)


@pytest.mark.slow
def test_every_worker_page_at_desktop_and_phone_size(served, browser):
    """Screenshots of consent, task (plain and with a confidence rating), done and no-work pages in test-artifacts/;
    on the phone (390 x 844) the image to match, all five faces, "not in this lineup", the rating and the confirm
    button fit the screen without scrolling."""
    server, slugs, _ = served
    taker = browser.new_context(viewport=DESKTOP).new_page()
    taker.goto(f"{server.base}/s/{slugs['full']}/?workerId=TAKER")
    taker.check("input[name=consent]")
    taker.click("text=Start")
    taker.wait_for_selector("text=Task 1 of")  # this worker's HIT holds every lineup of the study: none is left
    for size, options in (("desktop", {"viewport": DESKTOP}), ("phone", PHONE)):
        context = browser.new_context(**options)
        page = context.new_page()
        page.goto(f"{server.base}/s/{slugs['lab']}/?workerId=LOOK-{size}")
        page.screenshot(path=str(ARTIFACTS / f"consent-{size}.png"), full_page=True)
        assert "University IRB 2026-042" in page.content() and "3 tasks" in page.content()
        page.check("input[name=consent]")
        page.click("text=Start")
        page.wait_for_selector("text=Task 1 of 3")
        page.locator("label.face").nth(2).click()
        page.screenshot(path=str(ARTIFACTS / f"task-{size}.png"))
        assert page.locator("label.face").count() == 5 and page.locator("label.absent").count() == 1
        if size == "phone":
            check_fits(page, "task")
        for _ in range(3):
            page.locator("label.face").nth(2).click()
            page.click("button.send")
        page.wait_for_selector(".completion-code")
        page.screenshot(path=str(ARTIFACTS / f"done-{size}.png"), full_page=True)
        if size == "phone":
            check_fits(page, "done")

        page.goto(f"{server.base}/s/{slugs['rated']}/?workerId=LOOK-{size}")
        page.check("input[name=consent]")
        page.click("text=Start")
        page.wait_for_selector("text=Task 1 of 2")
        page.locator("label.face").nth(0).click()
        assert page.is_visible("#confidence")
        page.screenshot(path=str(ARTIFACTS / f"task-rated-{size}.png"))
        if size == "phone":
            check_fits(page, "rated task")

        other = browser.new_context(**options).new_page()
        other.goto(f"{server.base}/s/{slugs['full']}/?workerId=LATE-{size}")
        other.check("input[name=consent]")
        other.click("text=Start")
        other.wait_for_selector("text=No tasks for you right now")
        other.screenshot(path=str(ARTIFACTS / f"no-work-{size}.png"), full_page=True)
        if size == "phone":
            check_fits(other, "no work")
        other.context.close()
        context.close()
