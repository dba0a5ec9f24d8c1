"""A second dataset in another shape (tests/conftest.py, ``other_dataset``), end to end: bundle convert -> judges
-> study -> a real browser -> the simulated panel -> export -> analysis."""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mi_harness.bundle import read_bundle
from mi_harness.cli import main
from survey_app.server import ServerProcess
from tests.conftest import OTHER_IDENTITIES as IDENTITIES

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


def run(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_another_dataset_through_the_whole_pipeline(other_dataset, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    bundle_dir, url = tmp_path / "bundle", f"sqlite:///{tmp_path / 'survey.db'}"
    out = run("bundle", "convert", other_dataset / "recon", "--class-map", other_dataset / "classes.json",
              "--gallery", other_dataset / "gallery", "--model", "gmi", "--out", bundle_dir)
    assert "12 reconstructions and 120 gallery photos (64x64 colour)" in out
    bundle = read_bundle(bundle_dir)
    assert bundle.mode == "RGB" and bundle.image_size == (64, 64) and bundle.display_size == (224, 224)
    assert {i.subject for i in bundle.items} == set(IDENTITIES) and {i.model for i in bundle.items} == {"gmi"}

    table = run("evaluate", bundle_dir, "--json", tmp_path / "judges.json")
    (row,) = json.loads((tmp_path / "judges.json").read_text())
    assert row["n"] == 12 and row["unusable"] == 0 and row["top1_pixel"] >= 0.9, table  # class means: a signal

    run("db", "upgrade", "--database", url)
    created = json.loads(run("study", "create", "--database", url, "--name", "other", "--bundle", bundle_dir,
                             "--set", "hit_size=4", "--set", "answers_per_item=2", "--open-run", "1").splitlines()[-1])
    slug = created["link"].rstrip("/").split("/")[-1]
    with ServerProcess(url, workers=1, threads=4) as server:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(f"{server.base}/s/{slug}/?workerId=OTHER1")
            page.check("input[name=consent]")
            page.click("text=Start")
            for number in range(1, 5):
                page.wait_for_selector(f"text=Task {number} of 4")
                images = page.locator("img")
                sizes = [images.nth(i).evaluate("i => [i.naturalWidth, i.naturalHeight, i.width, i.height]")
                         for i in range(images.count())]
                assert all(s[:2] == [64, 64] for s in sizes), sizes
                assert all(shown_w == shown_h for _, _, shown_w, shown_h in sizes), sizes  # square, not 92:112
                if number == 1:
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "other-dataset-lineup.png"), full_page=True)
                    src = images.first.get_attribute("src")
                    assert src.startswith("data:image/png;base64,")  # inline, as every image the app shows
                    png = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
                    rgb = np.asarray(png.convert("RGB"), dtype=float)
                    assert png.mode == "RGB" and rgb[..., 0].mean() > rgb[..., 2].mean() + 10  # the sepia kept
                page.locator("label.face").nth(number % 5).click()  # choose, then confirm
                page.locator("button.send").click()
            page.wait_for_selector(".completion-code")
            browser.close()
        log = run("simulate", "other", "--database", url, "--workers", "6", "--hits-per-worker", "2",
                  "--url", server.base)
    assert "attentive" in log
    run("study", "export", "--database", url, created["id"], "--out", tmp_path / "answers.csv")
    rows = (tmp_path / "answers.csv").read_text().splitlines()
    assert len(rows) - 1 == 24 and all(",gmi," in r for r in rows[1:])  # 12 items x 2 answers, every one kept
    assert any(re.search(r",OTHER1,", r) for r in rows[1:])
    run("analyze", "other", "--database", url, "--out", tmp_path / "report", "--no-deep-judge")
    report = (tmp_path / "report" / "report.html").read_text()
    assert "gmi" in report
