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


@pytest.fixture
def served_study(tmp_path, bundle_dir):
    url = f"sqlite:///{tmp_path / 'survey.db'}"
    upgrade(url)
    engine = create_engine(url)
    with Session(engine) as db:
        study = create_study(db, load_bundle(bundle_dir), "browser", settings_from({"hit_size": 4}), "test")
        set_run_status(db, study, 1, "open")
        db.commit()
        slug = study.slug
    server = Server(url, workers=1, threads=4)
    yield server, slug, engine
    server.stop()
    engine.dispose()


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
            page.locator("button.face").nth(number % 5).dblclick()  # a double click is one answer
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
