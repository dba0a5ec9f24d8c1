"""Shared fixtures: the real AT&T faces from ../shared/data (or $MI_FACES_DIR), and the same photos as a second
dataset in another shape."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    path = Path(os.environ.get("MI_FACES_DIR") or SHARED_DATA / "att_faces")
    if not (path / "s1").is_dir():
        pytest.fail(f"the AT&T faces are needed for the tests and are not at {path}: set MI_FACES_DIR")
    return path


@pytest.fixture(scope="session")
def faces(faces_dir):
    from attack.faces import load_faces

    return load_faces(faces_dir)


@pytest.fixture(scope="session")
def paper_reconstructions() -> Path:
    path = SHARED_DATA / "paper_reconstructions"
    if not (path / "manifest.csv").is_file():
        pytest.fail(f"the paper authors' reconstructions are expected at {path}")
    return path


OTHER_IDENTITIES = [f"person-{name}" for name in ("ada", "bo", "cy", "di", "ed", "flo", "gus", "hal", "ivy", "jo",
                                                   "kim", "lu")]
"""The second dataset's identities: AT&T subjects 1-12 under names that are not s1..s40."""
OTHER_SIZE = 64
SEPIA = np.array([1.0, 0.82, 0.62])  # real colour, so every stage must keep three channels


def sepia(photo: np.ndarray) -> Image.Image:
    rgb = np.clip(photo[..., None] * SEPIA * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").resize((OTHER_SIZE, OTHER_SIZE), Image.Resampling.LANCZOS)


@pytest.fixture(scope="session")
def other_dataset(faces, tmp_path_factory) -> Path:
    """A second dataset in another shape: ``gallery/<identity>/<n>.jpg`` (12 identities x 10 photos, 64x64 sepia
    JPEGs, the ImageFolder layout) and ``recon/<class index>/0.png`` with ``classes.json`` (a toolbox's class
    folders: each class's "reconstruction" is the mean of its first 7 photos, a stand-in for an attack's output)."""
    root = tmp_path_factory.mktemp("other")
    for label, identity in enumerate(OTHER_IDENTITIES):
        (root / "gallery" / identity).mkdir(parents=True)
        (root / "recon" / str(label)).mkdir(parents=True)
        for number in range(1, 11):
            sepia(faces.images[faces.index_of(label, number)]).save(root / "gallery" / identity / f"{number}.jpg",
                                                                     quality=90)
        mean = faces.images[[faces.index_of(label, n) for n in range(1, 8)]].mean(axis=0)
        sepia(mean).save(root / "recon" / str(label) / "0.png")
    (root / "classes.json").write_text(json.dumps(OTHER_IDENTITIES))  # index -> identity, as a list
    return root
