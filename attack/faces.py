"""Loading the AT&T (ORL) faces and splitting each subject's images into training and validation.

The folder is never copied into the project: it is found through an explicit option, then the
``MI_FACES_DIR`` environment variable, then a default location, and the error says where it looked.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mi_harness.galleries import HOW_TO_GET, GalleryError, default_gallery_dir

N_SUBJECTS = 40
IMAGES_PER_SUBJECT = 10
WIDTH, HEIGHT = 92, 112
N_PIXELS = WIDTH * HEIGHT
TRAIN_PER_SUBJECT = 7


class FacesError(ValueError):
    """The faces folder is missing, incomplete or holds something that is not a 92x112 greyscale face."""


def subject_name(label: int) -> str:
    """Model labels are 0-based; the ORL folders and every file format of the project say s1..s40."""
    return f"s{label + 1}"


def subject_label(name: str) -> int:
    if not (name.startswith("s") and name[1:].isdigit() and 1 <= int(name[1:]) <= N_SUBJECTS):
        raise FacesError(f"unknown subject {name!r}: expected s1..s{N_SUBJECTS}")
    return int(name[1:]) - 1


def resolve_faces_dir(option: str | os.PathLike | None = None) -> Path:
    """The first of --faces, $MI_FACES_DIR and the defaults that exists (``mi_harness.galleries`` owns the rule)."""
    try:
        return default_gallery_dir(option)
    except GalleryError as exc:
        raise FacesError(str(exc)) from None


@dataclass(frozen=True)
class Faces:
    """All 400 images as float32 in [0, 1], shape (400, 112, 92), ordered subject-major."""

    root: Path
    images: np.ndarray
    labels: np.ndarray  # 0..39
    numbers: np.ndarray  # 1..10, the ORL file number within the subject

    def flat(self, index: np.ndarray | None = None) -> np.ndarray:
        images = self.images if index is None else self.images[index]
        return images.reshape(len(images), N_PIXELS)

    def index_of(self, label: int, number: int) -> int:
        return label * IMAGES_PER_SUBJECT + number - 1


def read_face(path: Path) -> np.ndarray:
    """One ORL image as float32 in [0, 1]; a non-image or a wrong size is an error naming the file."""
    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            pixels = np.asarray(img, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as exc:
        raise FacesError(f"{path}: not a readable image ({exc})") from exc
    if size != (WIDTH, HEIGHT):
        raise FacesError(f"{path}: image is {size[0]}x{size[1]}, expected {WIDTH}x{HEIGHT}")
    if mode != "L":
        raise FacesError(f"{path}: image mode is {mode}, expected 8-bit greyscale (L)")
    return pixels / 255.0


def load_faces(directory: str | os.PathLike | None = None) -> Faces:
    root = resolve_faces_dir(directory)
    images, labels, numbers = [], [], []
    for label in range(N_SUBJECTS):
        for number in range(1, IMAGES_PER_SUBJECT + 1):
            path = root / subject_name(label) / f"{number}.pgm"
            if not path.is_file():
                raise FacesError(f"{path}: missing (the ORL layout has s1..s40/1..10.pgm); {HOW_TO_GET}")
            images.append(read_face(path))
            labels.append(label)
            numbers.append(number)
    return Faces(root, np.stack(images), np.array(labels), np.array(numbers))


@dataclass(frozen=True)
class Split:
    """Which image numbers (1..10) of each subject were used for training and which for validation."""

    seed: int
    train: dict[int, list[int]]
    validation: dict[int, list[int]]

    @classmethod
    def make(cls, seed: int, train_per_subject: int = TRAIN_PER_SUBJECT) -> "Split":
        rng = np.random.default_rng(seed)
        train, validation = {}, {}
        for label in range(N_SUBJECTS):
            order = rng.permutation(np.arange(1, IMAGES_PER_SUBJECT + 1))
            train[label] = sorted(int(n) for n in order[:train_per_subject])
            validation[label] = sorted(int(n) for n in order[train_per_subject:])
        return cls(seed, train, validation)

    def indices(self, faces: Faces, role: str) -> np.ndarray:
        numbers = self.train if role == "train" else self.validation
        return np.array([faces.index_of(label, n) for label in sorted(numbers) for n in numbers[label]])

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "subjects": {
                subject_name(label): {"train": self.train[label], "validation": self.validation[label]}
                for label in sorted(self.train)
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> "Split":
        subjects = data["subjects"]
        train = {subject_label(s): list(v["train"]) for s, v in subjects.items()}
        validation = {subject_label(s): list(v["validation"]) for s, v in subjects.items()}
        return cls(int(data["seed"]), train, validation)
