"""Screening: what no person could use is flagged with its reason; real photos and reconstructions are kept."""
import numpy as np
import pytest
from PIL import Image

from mi_harness.screening import STRUCTURE_MIN, screen_image, screen_images, screening_record


def test_constant_and_near_constant_images_are_flagged():
    rng = np.random.default_rng(0)
    for image in (np.zeros((112, 92)), np.full((112, 92), 255, np.uint8),
                  np.clip(0.4 + rng.normal(0, 0.005, (112, 92)), 0, 1)):
        verdict = screen_image(image)
        assert not verdict.usable and verdict.reason == "constant" and "near-constant" in verdict.detail
    speck = np.zeros((112, 92))
    speck[:6, :6] = 1.0  # a black rectangle with a few stray pixels is still nothing to recognise
    assert screen_image(speck).reason == "constant"


def test_noise_is_flagged_as_grain():
    rng = np.random.default_rng(1)
    for image in (rng.random((112, 92)), np.clip(rng.normal(0.5, 0.15, (112, 92)), 0, 1),
                  (rng.random((112, 92, 3)) * 255).astype(np.uint8)):
        verdict = screen_image(image)
        assert not verdict.usable and verdict.reason == "grain" and verdict.structure < 0.2


def test_every_real_photo_and_the_paper_authors_reconstructions_are_kept(faces, paper_reconstructions):
    verdicts = screen_images(faces.images)
    assert all(v.usable for v in verdicts)
    paper = sorted((paper_reconstructions / "images").glob("*.png"))
    assert len(paper) > 150
    kept = [screen_image(np.asarray(Image.open(p).convert("L"))) for p in paper]
    assert all(v.usable for v in kept), [v.detail for v in kept if not v.usable]
    # a face under heavy grain is on the edge; the same face under light grain is kept
    rng = np.random.default_rng(2)
    photo = faces.images[17]
    light = np.clip(photo + rng.normal(0, 0.05, photo.shape), 0, 1)
    heavy = np.clip(photo + rng.normal(0, 0.6, photo.shape), 0, 1)
    assert screen_image(light).usable and screen_image(heavy).structure < screen_image(light).structure


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="one \\(H, W\\)"):
        screen_image(np.zeros((2, 5, 5)))


def test_the_record_counts_each_condition_and_reason():
    good, grain, flat = screen_image(np.tile(np.linspace(0, 1, 92), (112, 1))), \
        screen_image(np.random.default_rng(0).random((112, 92))), screen_image(np.zeros((112, 92)))
    assert good.usable and not grain.usable and not flat.usable and STRUCTURE_MIN > grain.structure
    conditions = [{"model": "mlp", "attack": "mi-face", "countermeasure": "none"}] * 3 + \
        [{"model": "softmax", "attack": "mi-face", "countermeasure": "none", "blur": ""}]
    record = screening_record(conditions, ["a", "b", "c", "d"], [good, grain, flat, good], kept_unusable=False)
    assert record["items"] == 4 and record["unusable"] == 2 and record["left_out"] == 2
    mlp = record["by_condition"][0]
    assert mlp["model"] == "mlp" and mlp["items"] == 3 and mlp["left_out"] == 2
    assert mlp["reasons"] == {"grain": 1, "constant": 1}
    assert [f["id"] for f in record["flagged"]] == ["b", "c"]
    kept = screening_record(conditions, ["a", "b", "c", "d"], [good, grain, flat, good], kept_unusable=True)
    assert kept["left_out"] == 0 and kept["unusable"] == 2 and kept["by_condition"][0]["left_out"] == 0
