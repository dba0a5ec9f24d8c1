"""A real browser (Debian's chromium, driven by Playwright) completes a HIT on the real server by clicking."""
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from survey_app.importer import create_study, load_bundle, settings_from
from survey_app.migrate import upgrade
from survey_app.models import Answer, Hit
from survey_app.server import ServerProcess as Server
from survey_app.studies import set_run_status

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def serve_study(tmp_path, bundle_dir, name: str, settings: dict, url: str | None = None):
    """A study with run 1 open, on a real server: yields (server, slug, engine). ``url``: the database (a new SQLite
    file by default)."""
    url = url or f"sqlite:///{tmp_path / 'survey.db'}"
    upgrade(url)
    engine = create_engine(url)
    with Session(engine) as db:
        study = create_study(db, load_bundle(bundle_dir), name, settings_from(settings), "test")
        set_run_status(db, study, 1, "open")
        db.commit()
        slug = study.slug
    server = Server(url, workers=1, threads=4)
    yield server, slug, engine
    server.stop()
    engine.dispose()


def launch(p):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    return p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)


def consent(page, server, slug: str, worker_id: str) -> None:
    """Arrive by the study's link as ``worker_id``, consent and start."""
    page.goto(f"{server.base}/s/{slug}/?workerId={worker_id}")
    page.check("input[name=consent]")
    page.click("text=Start")


@pytest.fixture
def served_study(tmp_path, bundle_dir, database):
    """On both databases: on PostgreSQL each answer and the page it brings are one statement (hits.py)."""
    yield from serve_study(tmp_path, bundle_dir, "browser", {"hit_size": 4}, database)


@pytest.mark.slow
def test_chromium_completes_a_hit_by_clicking(served_study):
    sync_api = pytest.importorskip("playwright.sync_api")
    server, slug, engine = served_study
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        sent = []
        page.on("request", lambda request: sent.append((request.method, urlsplit(request.url).path)))
        consent(page, server, slug, "BROWSER1")
        for number in range(1, 5):
            page.wait_for_selector(f"text=Task {number} of 4")
            if number > 1:  # shown in place after the answer, the focus on "Task n of 4" for a screen reader
                assert page.evaluate("document.activeElement.className") == "progress"
                # at the task's own address (a reload shows it), the after-answer mark used once and cleared
                assert page.url.endswith(f"/s/{slug}/task") and page.evaluate("history.state") is None
            if number == 2:  # the page the first answer brought
                page.screenshot(path=str(ARTIFACTS / f"next-page-{engine.dialect.name}.png"), full_page=True)
            images = page.locator("img")
            assert images.count() in (6, 7)
            assert all(images.nth(i).evaluate("img => img.naturalWidth") == 92 for i in range(images.count()))
            if number == 1:
                page.screenshot(path=str(ARTIFACTS / f"lineup-page-{engine.dialect.name}.png"), full_page=True)
                page.reload()  # a reload shows the same task
                page.wait_for_selector("text=Task 1 of 4")
            page.locator("label.face").nth(number % 5).click()  # choose, then confirm
            page.locator("button.send").dblclick()  # a double click is one answer
        page.wait_for_selector(".completion-code")
        assert page.url.endswith(f"/s/{slug}/done")
        # one request a task: each answer's response was the next page (the done page last), no GET after it
        pages = [(method, path.rsplit("/", 1)[-1]) for method, path in sent if path.startswith(f"/s/{slug}/")]
        assert pages == [("GET", ""), ("POST", "consent"), ("GET", "task"), ("GET", "task"), *[("POST", "answer")] * 4]
        code = page.locator(".completion-code").first.inner_text()
        page.go_back()  # the back button lands on the server's idea of where the worker is, not a stale task
        page.wait_for_load_state()
        assert "Task " not in page.content() and code in page.content()
        browser.close()
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Answer)) == 4
        assert db.scalars(select(Hit.completion_code)).one() == code
    assert (ARTIFACTS / f"lineup-page-{engine.dialect.name}.png").stat().st_size > 10_000


@pytest.fixture
def rated_study(tmp_path, bundle_dir):
    yield from serve_study(tmp_path, bundle_dir, "rated", {"hit_size": 2, "confidence_scale": 5})


@pytest.mark.slow
def test_confidence_by_keyboard_and_on_a_phone(rated_study):
    """The rating appears once a face is picked; a keyboard alone answers (arrow keys, Tab, Enter), and on a
    phone-sized touch screen nothing scrolls sideways and the rating's targets are finger-sized."""
    sync_api = pytest.importorskip("playwright.sync_api")
    server, slug, engine = rated_study
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                    device_scale_factor=2)
        page = phone.new_page()
        consent(page, server, slug, "PHONE1")
        page.wait_for_selector("text=Task 1 of 2")
        assert not page.is_visible("#confidence")  # asked after the choice
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
        # keyboard only: focus the first face, arrow to the second, Tab to the rating, pick 3, Tab to send, Enter
        page.focus("input[name=choice] >> nth=0")
        page.keyboard.press("ArrowRight")
        assert page.is_visible("#confidence")
        page.keyboard.press("Tab")
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Task 2 of 2")
        # touch: tap a face, tap "5"
        page.locator("label.face").nth(3).tap()
        boxes = [page.locator("#confidence label").nth(k).bounding_box() for k in range(5)]
        assert all(b["height"] >= 44 and b["width"] >= 44 for b in boxes)
        assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(ARTIFACTS / "lineup-page-phone.png"), full_page=True)
        page.locator("#confidence label").nth(4).tap()
        page.locator("button.send").tap()
        page.wait_for_selector(".completion-code")
        browser.close()
    with Session(engine) as db:
        stored = db.execute(select(Answer.choice, Answer.confidence).order_by(Answer.id)).all()
    assert [tuple(r) for r in stored] == [(1, 3), (3, 5)]


@pytest.fixture
def short_study(tmp_path, bundle_dir):
    yield from serve_study(tmp_path, bundle_dir, "short", {"hit_size": 2})


@pytest.mark.slow
def test_without_javascript_the_form_posts_and_its_redirect_leads_on(short_study):
    sync_api = pytest.importorskip("playwright.sync_api")
    server, slug, engine = short_study
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(java_script_enabled=False).new_page()
        consent(page, server, slug, "NOSCRIPT1")
        for number in (1, 2):
            page.wait_for_selector(f"text=Task {number} of 2")
            page.locator("label.face").nth(number).click()
            with page.expect_navigation():
                page.locator("button.send").click()
        assert page.url.endswith(f"/s/{slug}/done")
        code = page.locator(".completion-code").first.inner_text()
        browser.close()
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Answer)) == 2
        assert db.scalars(select(Hit.completion_code)).one() == code


@pytest.mark.slow
def test_a_failed_send_says_so_keeps_the_choice_and_the_answer_is_stored_once(short_study):
    """A reply lost on the way back (the answer was stored), then the server's 503: each time the page says so and
    the same answer can be confirmed again; the third try leads on, and the task has its one answer."""
    sync_api = pytest.importorskip("playwright.sync_api")
    server, slug, engine = short_study
    failures = ["lost reply", "busy"]

    def flaky(route):
        failure = failures.pop(0) if failures else None
        if failure == "lost reply":
            route.fetch()  # the server stores the answer; its reply never reaches the page
            route.abort("connectionreset")
        elif failure == "busy":
            route.fulfill(status=503, content_type="text/html",
                          body='<main><p class="message">the database is busy; nothing was stored, please retry</p>'
                               "</main>")
        else:
            route.continue_()

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        consent(page, server, slug, "FLAKY1")
        page.wait_for_selector("text=Task 1 of 2")
        page.route("**/answer", flaky)
        page.locator("label.face").nth(2).click()
        for said in ("connection failed", "database is busy"):
            page.locator("button.send").click()
            page.wait_for_selector(f"#send-problem:has-text('{said}')")
            assert page.is_enabled("button.send") and page.is_checked("input[name=choice] >> nth=2")
            with Session(engine) as db:  # the lost reply's answer was stored; the resend must not store another
                assert db.scalar(select(func.count()).select_from(Answer)) == 1
        page.locator("button.send").click()
        page.wait_for_selector("text=Task 2 of 2")
        browser.close()
    with Session(engine) as db:
        assert db.scalars(select(Answer.choice)).all() == [2]
