"""A real browser (Debian's chromium, driven by Playwright) completes a HIT on the real server by clicking."""
from pathlib import Path

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


def serve_study(tmp_path, bundle_dir, name: str, settings: dict):
    """A study with run 1 open, on a real server: yields (server, slug, engine)."""
    url = f"sqlite:///{tmp_path / 'survey.db'}"
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


@pytest.fixture
def served_study(tmp_path, bundle_dir):
    yield from serve_study(tmp_path, bundle_dir, "browser", {"hit_size": 4})


@pytest.mark.slow
def test_chromium_completes_a_hit_by_clicking(served_study):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    server, slug, engine = served_study
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(f"{server.base}/s/{slug}/?workerId=BROWSER1")
        page.check("input[name=consent]")
        page.click("text=Start")
        for number in range(1, 5):
            page.wait_for_selector(f"text=Task {number} of 4")
            images = page.locator("img")
            assert images.count() in (6, 7)
            assert all(images.nth(i).evaluate("img => img.naturalWidth") == 92 for i in range(images.count()))
            if number == 1:
                page.screenshot(path=str(ARTIFACTS / "lineup-page.png"), full_page=True)
                page.reload()  # a reload shows the same task
                page.wait_for_selector("text=Task 1 of 4")
            page.locator("label.face").nth(number % 5).click()  # choose, then confirm
            page.locator("button.send").dblclick()  # a double click is one answer
        page.wait_for_selector(".completion-code")
        code = page.locator(".completion-code").first.inner_text()
        page.go_back()  # the back button lands on the server's idea of where the worker is, not a stale task
        page.wait_for_load_state()
        assert "Task " not in page.content() and code in page.content()
        browser.close()
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Answer)) == 4
        assert db.scalars(select(Hit.completion_code)).one() == code
    assert (ARTIFACTS / "lineup-page.png").stat().st_size > 10_000


@pytest.fixture
def rated_study(tmp_path, bundle_dir):
    yield from serve_study(tmp_path, bundle_dir, "rated", {"hit_size": 2, "confidence_scale": 5})


@pytest.mark.slow
def test_confidence_by_keyboard_and_on_a_phone(rated_study):
    """The rating appears once a face is picked; a keyboard alone answers (arrow keys, Tab, Enter), and on a
    phone-sized touch screen nothing scrolls sideways and the rating's targets are finger-sized."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    server, slug, engine = rated_study
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                    device_scale_factor=2)
        page = phone.new_page()
        page.goto(f"{server.base}/s/{slug}/?workerId=PHONE1")
        page.check("input[name=consent]")
        page.click("text=Start")
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
