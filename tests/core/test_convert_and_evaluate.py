import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from attack.faces import Split
from attack.gallery import att_references
from mi_harness.bundle import BundleError, read_bundle
from mi_harness.convert import convert
from mi_harness.evaluate import Recogniser, evaluate_bundle, standardise
from mi_harness.galleries import from_folder


@pytest.fixture(scope="module")
def att_gallery(faces):
    return from_folder(faces.root)


def convert_folder(folder, csv_path, out, gallery, where=None):
    return convert(out, gallery, folder=folder, csv_path=csv_path, where=where)


@pytest.fixture(scope="module")
def recogniser(faces):
    return Recogniser(att_references(faces, Split.make(0)))


@pytest.fixture(scope="module")
def paper_bundle(paper_reconstructions, att_gallery, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "bundle"
    convert_folder(paper_reconstructions, paper_reconstructions / "manifest.csv", out, att_gallery,
                   where={"kind": "final_image"})
    return read_bundle(out)


def test_the_paper_authors_images_convert_to_a_valid_bundle(paper_bundle):
    assert len(paper_bundle.items) == 198  # every final_image row, no target_img rows
    item = paper_bundle.items[0]
    assert item.attack == "external" and item.model in {"softmax", "dae"}
    assert item.params["resized_from"] == "184x224" and item.params["access"] in {"whitebox", "blackbox"}
    assert paper_bundle.load_image(item.image).shape == (112, 92)


@pytest.mark.slow  # the deep judge describes all 198 images (about 45 s on 2 cores)
def test_evaluator_reproduces_the_known_identification_of_the_authors_images(paper_bundle, recogniser):
    groups = {tuple(g.group.values()): g for g in
              evaluate_bundle(paper_bundle, recogniser, ("model", "access", "training_set"))}
    assert groups[("softmax", "whitebox", "full")].top1_pixel == 1.0
    assert groups[("softmax", "whitebox", "full")].n == 63
    assert groups[("dae", "whitebox", "full")].top1_pixel == pytest.approx(26 / 27)
    # models trained on half the subjects' photos give far less: the evaluator tells them apart
    assert groups[("softmax", "whitebox", "half")].top1_pixel < 0.7
    # a face recogniser names far fewer: a signal in the pixels is not a face a person would name
    assert 0.4 < groups[("softmax", "whitebox", "full")].top1_deep < 0.7  # measured 55.6%
    assert groups[("dae", "whitebox", "full")].top1_deep < 0.2  # measured 11.1%
    assert all(g.unusable == 0 for g in groups.values())  # every one of the authors' images is usable


def test_recogniser_is_blind_to_contrast_but_not_to_identity(faces, recogniser):
    photo = faces.images[faces.index_of(4, 2)]
    labels = np.array([4, 4, 4])
    other = faces.images[faces.index_of(9, 2)]
    ranks = recogniser.subject_ranks(np.stack([photo, 0.3 * photo + 0.5, other]), labels)
    assert ranks["pixel"].tolist()[:2] == [0, 0] and ranks["eigen"].tolist()[:2] == [0, 0]
    assert ranks["pixel"][2] > 0 and ranks["eigen"][2] > 0
    noise = np.random.default_rng(1).random((40, 112, 92)).astype(np.float32)
    assert (recogniser.subject_ranks(noise, np.arange(40))["pixel"] == 0).mean() < 0.2
    np.testing.assert_allclose(standardise(photo[None]).std(), 1.0, rtol=1e-6)


def write_csv(path, rows, columns=("file", "subject", "model")):
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def small_folder(paper_reconstructions, tmp_path):
    folder = tmp_path / "recon"
    (folder / "images").mkdir(parents=True)
    for name in ("img26ZZKl.png", "imgT8l3AH.png"):
        shutil.copy(paper_reconstructions / "images" / name, folder / "images" / name)
    return folder


def test_converter_errors_name_the_line_and_write_nothing(small_folder, att_gallery, tmp_path):
    Image.new("L", (100, 100)).save(small_folder / "images" / "odd.png")
    write_csv(small_folder / "recon.csv", [
        {"file": "images/img26ZZKl.png", "subject": "s1", "model": "dae"},
        {"file": "images/missing.png", "subject": "s2", "model": "dae"},
        {"file": "images/imgT8l3AH.png", "subject": "s77", "model": "dae"},
        {"file": "images/odd.png", "subject": "s3", "model": "dae"},
    ])
    out = tmp_path / "out"
    with pytest.raises(BundleError) as err:
        convert_folder(small_folder, small_folder / "recon.csv", out, att_gallery)
    text = str(err.value)
    assert "line 3: image" in text and "missing" in text
    assert "line 4: identity 's77' is not in the gallery" in text
    assert "line 5:" not in text  # sizes are checked once every row names a known identity and a readable image
    assert not out.exists()
    write_csv(small_folder / "recon.csv", [
        {"file": "images/img26ZZKl.png", "subject": "s1", "model": "dae"},
        {"file": "images/odd.png", "subject": "s3", "model": "dae"},
    ])
    with pytest.raises(BundleError, match=r"line 3: .*odd.png is 100x100, another aspect than the bundle's 92x112"):
        convert_folder(small_folder, small_folder / "recon.csv", out, att_gallery)
    assert not out.exists()


def test_converter_needs_file_and_subject_columns(small_folder, att_gallery, tmp_path):
    write_csv(small_folder / "bad.csv", [{"file": "images/img26ZZKl.png", "model": "dae"}], ("file", "model"))
    with pytest.raises(BundleError, match="needs columns 'file' and 'subject'"):
        convert_folder(small_folder, small_folder / "bad.csv", tmp_path / "out", att_gallery)


def test_a_blank_image_identifies_no_one(recogniser):
    """Correlation with a constant image is 0 for every photo: a 40-way tie must not count as a hit."""
    ranks = recogniser.subject_ranks(np.zeros((2, 112, 92), dtype=np.float32), np.array([0, 39]))
    assert (ranks["pixel"] == 39).all()


def test_the_photo_an_attacker_blurred_is_left_out_of_the_references(faces, recogniser):
    index = faces.index_of(12, 4)
    photo = faces.images[index][None]
    assert recogniser.subject_ranks(photo, np.array([12]))["pixel"][0] == 0
    sims = (standardise(photo) @ standardise(faces.images).T / photo[0].size)[0]
    sims[index] = -np.inf
    best = np.array([sims[faces.labels == s].max() for s in range(40)])
    expected = int((best > best[12]).sum())
    assert recogniser.subject_ranks(photo, np.array([12]), exclude=[index])["pixel"][0] == expected
