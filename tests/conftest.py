"""Shared fixtures: the real AT&T faces from ../shared/data (or $MI_FACES_DIR)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
