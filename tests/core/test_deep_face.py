"""The deep face judge on the real AT&T photos, on noise and on constant images."""
import os
import subprocess
import sys

import numpy as np
import pytest

from mi_harness import deep_face
from mi_harness.deep_face import (
    ABSENT,
    SAME_PERSON_DISTANCE,
    DeepFaceJudge,
    distances,
    lineup_choice,
    subject_distances,
    true_subject_ranks,
)


@pytest.fixture(scope="session")
def judge():
    return DeepFaceJudge()


@pytest.fixture(scope="session")
def gallery(judge, faces):
    """The 400 photos' descriptors, through the on-disk cache (computed once per machine)."""
    return judge.gallery_descriptors(faces.images)


def test_held_out_photos_are_named_by_the_rest_of_the_gallery(judge, gallery, faces):
    # fresh descriptors of one photo per subject match the cached ones (the cache holds what the judge computes)
    probes = np.arange(0, 400, 10) + 9  # photo 10 of every subject
    fresh = judge.descriptors(faces.images[probes])
    np.testing.assert_allclose(fresh, gallery[probes], atol=1e-5)
    # leave-one-out over all 400: each photo against the other 399 (measured: 99.75%)
    dist = distances(gallery, gallery)
    np.fill_diagonal(dist, np.inf)
    assert (faces.labels[dist.argmin(1)] == faces.labels).mean() >= 0.97
    # most photos of the same person are within dlib's same-person distance of their nearest other photo
    assert (dist.min(1) < SAME_PERSON_DISTANCE).mean() > 0.95


def test_noise_and_constant_images_are_named_at_chance(judge, gallery, faces):
    rng = np.random.default_rng(3)
    noise = np.concatenate([rng.random((20, 112, 92)), np.clip(rng.normal(0.5, 0.15, (20, 112, 92)), 0, 1)])
    constant = np.repeat(np.linspace(0, 1, 20)[:, None, None], 112 * 92, axis=1).reshape(20, 112, 92)
    for images in (noise, constant):
        labels = np.arange(len(images)) % 40
        per_subject = subject_distances(judge.descriptors(images), gallery, faces.labels, 40)
        named = int((true_subject_ranks(per_subject, labels) == 0).sum())
        assert named <= 2, named  # chance is 1/40 of them; a judge that saw a face in them would name far more
    # a real photo shown beside them is named: the judge is blind to noise, not broken
    assert true_subject_ranks(subject_distances(judge.descriptors(faces.images[[55]]), np.delete(gallery, 55, 0),
                                                np.delete(faces.labels, 55), 40), faces.labels[[55]])[0] == 0


def test_grey_colour_uint8_and_small_images_give_the_same_answers(judge, faces, gallery):
    photos = faces.images[[3, 104, 207]]
    as_float = judge.descriptors(photos)
    as_uint8 = judge.descriptors(np.round(photos * 255).astype(np.uint8))
    as_colour = judge.descriptors(np.repeat(photos[..., None], 3, axis=-1))
    np.testing.assert_allclose(as_float, as_uint8, atol=1e-6)
    np.testing.assert_allclose(as_float, as_colour, atol=1e-6)
    half = photos[:, ::2, ::2]  # 46x56: upsampled before alignment
    per_subject = subject_distances(judge.descriptors(half), gallery, faces.labels, 40, exclude=[3, 104, 207])
    assert (per_subject.argmin(1) == faces.labels[[3, 104, 207]]).all()
    with pytest.raises(ValueError, match="must lie in"):
        judge.descriptors(photos * 3)
    with pytest.raises(ValueError, match="shape"):
        judge.descriptors(np.zeros((2, 5, 5, 4)))


def test_lineup_choice_picks_the_nearest_face_or_says_absent():
    faces = np.eye(5, 128)
    assert lineup_choice(faces[3] + 0.01, faces) == 3
    far = np.full(128, 5.0)
    assert lineup_choice(far, faces) == ABSENT
    assert lineup_choice(far, faces, allow_absent=False) in range(5)


def test_ties_count_against_the_truth():
    per_subject = np.array([[0.5, 0.5, 0.7], [0.4, 0.5, 0.7]])
    assert true_subject_ranks(per_subject, np.array([0, 0])).tolist() == [1, 0]


def test_descriptors_are_cached_by_content_and_written_atomically(judge, faces, tmp_path, monkeypatch):
    photos = faces.images[:3]
    first = judge.gallery_descriptors(photos, cache_dir=tmp_path)
    stored = sorted(p.stem for p in (tmp_path / "deep-face").glob("*.npy"))
    rgb = deep_face.as_uint8_rgb(photos)
    assert stored == sorted(deep_face.image_digest(image) for image in rgb)
    monkeypatch.setattr(judge, "descriptors", lambda *a, **k: pytest.fail("recomputed cached descriptors"))
    np.testing.assert_array_equal(judge.gallery_descriptors(np.round(photos * 255).astype(np.uint8),
                                                            cache_dir=tmp_path), first)
    monkeypatch.undo()
    # a truncated entry is computed again, not trusted
    (tmp_path / "deep-face" / f"{stored[0]}.npy").write_bytes(b"\x93NUMPY")
    np.testing.assert_allclose(judge.cached_descriptors(photos, cache_dir=tmp_path), first, atol=1e-6)
    other = faces.images[3:6]  # other images, other keys; a write that dies leaves nothing behind

    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(deep_face.np, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        judge.gallery_descriptors(other, cache_dir=tmp_path)
    assert sorted(p.stem for p in (tmp_path / "deep-face").iterdir()) == stored


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'attack', 'survey_app', 'analysis'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
import mi_harness, mi_harness.deep_face, mi_harness.screening, mi_harness.judges
assert not mi_harness.screening.screen_image(np.zeros((112, 92))).usable
print('ok')
"""


def test_the_core_imports_without_torch_or_the_other_stages():
    result = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
