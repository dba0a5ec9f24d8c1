import shutil

import numpy as np
import pytest
from PIL import Image

from attack.faces import FacesError, Split, load_faces, resolve_faces_dir, subject_label, subject_name
from mi_harness.galleries import ENV_VAR


def test_loads_all_400_faces_scaled_to_unit_range(faces):
    assert faces.images.shape == (400, 112, 92)
    assert faces.images.dtype == np.float32
    assert 0.0 <= faces.images.min() and faces.images.max() <= 1.0
    assert faces.images.max() == pytest.approx(251 / 255)  # the ORL pixels run 0..251
    assert np.bincount(faces.labels).tolist() == [10] * 40
    # subject-major order: index_of agrees with what was read from s7/3.pgm
    with Image.open(faces.root / "s7" / "3.pgm") as img:
        np.testing.assert_array_equal(faces.images[faces.index_of(6, 3)], np.asarray(img) / np.float32(255))


def test_location_order_option_then_environment_then_default(faces_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(faces_dir))
    assert resolve_faces_dir() == faces_dir.resolve()
    with pytest.raises(FacesError) as err:
        resolve_faces_dir(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "fetch-faces" in str(err.value)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(FacesError, match=r"\$MI_FACES_DIR .*empty"):
        resolve_faces_dir()


@pytest.fixture
def copy_of_faces(faces_dir, tmp_path):
    target = tmp_path / "att"
    shutil.copytree(faces_dir, target)
    return target


def test_missing_image_is_named(copy_of_faces):
    (copy_of_faces / "s12" / "4.pgm").unlink()
    with pytest.raises(FacesError, match=r"s12/4\.pgm: missing"):
        load_faces(copy_of_faces)


def test_non_image_is_named(copy_of_faces):
    (copy_of_faces / "s3" / "9.pgm").write_text("not a picture")
    with pytest.raises(FacesError, match=r"s3/9\.pgm: not a readable image"):
        load_faces(copy_of_faces)


def test_wrong_size_is_named(copy_of_faces):
    Image.new("L", (64, 64)).save(copy_of_faces / "s40" / "10.pgm", format="PPM")
    with pytest.raises(FacesError, match=r"s40/10\.pgm: image is 64x64, expected 92x112"):
        load_faces(copy_of_faces)


def test_colour_image_is_refused(copy_of_faces):
    Image.new("RGB", (92, 112)).save(copy_of_faces / "s2" / "1.pgm", format="PPM")
    with pytest.raises(FacesError, match=r"s2/1\.pgm: image mode is RGB"):
        load_faces(copy_of_faces)


def test_split_is_seven_three_disjoint_and_seeded(faces):
    split = Split.make(3)
    for label in range(40):
        train, val = split.train[label], split.validation[label]
        assert len(train) == 7 and len(val) == 3
        assert sorted(train + val) == list(range(1, 11))
    assert Split.make(3) == split
    assert Split.make(4).train != split.train
    assert Split.from_json(split.to_json()) == split
    train_idx, val_idx = split.indices(faces, "train"), split.indices(faces, "validation")
    assert len(set(train_idx) | set(val_idx)) == 400 and not set(train_idx) & set(val_idx)


def test_subject_names_round_trip():
    assert subject_name(0) == "s1" and subject_label("s40") == 39
    for bad in ("s0", "s41", "x3", "s"):
        with pytest.raises(FacesError):
            subject_label(bad)
