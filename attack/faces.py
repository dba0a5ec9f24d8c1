"""Loading the AT&T (ORL) faces and splitting each subject's images into training and validation.

The folder is never copied into the project: it is found through an explicit option, then the
``MI_FACES_DIR`` environment variable, then a default location, and the error says where it looked.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mi_harness.galleries import HOW_TO_GET, TRAIN_SHARE, GalleryError, default_gallery_dir, load_photo, open_gallery

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
    """A gallery's photos as float32 grey in [0, 1], shape (n, height, width), ordered identity-major: the AT&T
    faces (400 of 112x92, ``identities`` None: they are s1..s40) or any gallery at a stated input size."""

    root: Path
    images: np.ndarray
    labels: np.ndarray  # 0-based identity
    numbers: np.ndarray  # 1-based photo within the identity (the ORL file number for AT&T)
    identities: tuple[str, ...] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of every image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def n_identities(self) -> int:
        return len(self.identities) if self.identities else N_SUBJECTS

    def name_of(self, label: int) -> str:
        return self.identities[label] if self.identities else subject_name(label)

    def model_dims(self) -> dict:
        """What a model trained on these photos needs beyond the AT&T defaults: its pixels and classes."""
        if self.identities is None:
            return {}
        return {"pixels": self.shape[0] * self.shape[1], "classes": self.n_identities}

    def counts(self) -> dict[int, int]:
        """Photos per identity label."""
        labels, counts = np.unique(self.labels, return_counts=True)
        return {int(label): int(count) for label, count in zip(labels, counts)}

    def flat(self, index: np.ndarray | None = None) -> np.ndarray:
        images = self.images if index is None else self.images[index]
        return images.reshape(len(images), -1)

    @cached_property
    def _index(self) -> dict[tuple[int, int], int]:
        return {(int(label), int(number)): k for k, (label, number) in enumerate(zip(self.labels, self.numbers))}

    def index_of(self, label: int, number: int) -> int:
        """Where (identity, photo number) sits in ``images``: a lookup, since a split asks it once a photo."""
        if self.identities is None:
            return label * IMAGES_PER_SUBJECT + number - 1
        return self._index[(label, number)]


def load_gallery_faces(source: str | os.PathLike, size: tuple[int, int]) -> Faces:
    """Any gallery (``mi_harness.galleries``: identity folders or a CSV) as grey photos at ``size`` (width,
    height), the input of the paper's models trained on another dataset."""
    try:
        gallery = open_gallery(source)
    except GalleryError as exc:
        raise FacesError(str(exc)) from None
    identities = gallery.identities
    index = {identity: k for k, identity in enumerate(identities)}
    images, labels, numbers, seen = [], [], [], {}
    for photo in gallery.photos:
        label = index[photo.identity]
        seen[label] = seen.get(label, 0) + 1
        try:
            images.append(load_photo(photo.path, size).astype(np.float32) / 255.0)
        except (OSError, ValueError) as exc:
            raise FacesError(f"{photo.path}: not a readable image ({exc})") from None
        labels.append(label)
        numbers.append(seen[label])
    return Faces(Path(source).resolve(), np.stack(images), np.array(labels), np.array(numbers), tuple(identities))


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

    @classmethod
    def for_faces(cls, faces: Faces, seed: int) -> "Split":
        """The AT&T split of ``make``, or for another gallery the same seeded rule per identity (TRAIN_SHARE of its
        photos for training, at least one of each role) that ``mi_harness.galleries.Gallery.roles`` draws. Roles a
        gallery CSV gives are not used here: the model's split decides, and its bundles record that split."""
        if faces.identities is None:
            return cls.make(seed)
        rng = np.random.default_rng(seed)
        train, validation = {}, {}
        for label, count in sorted(faces.counts().items()):
            order = rng.permutation(np.arange(1, count + 1))
            n_train = min(max(round(TRAIN_SHARE * count), 1), count - 1) if count > 1 else count
            train[label] = sorted(int(n) for n in order[:n_train])
            validation[label] = sorted(int(n) for n in order[n_train:])
        return cls(seed, train, validation)

    def indices(self, faces: Faces, role: str) -> np.ndarray:
        numbers = self.train if role == "train" else self.validation
        return np.array([faces.index_of(label, n) for label in sorted(numbers) for n in numbers[label]])

    def to_json(self, identities: tuple[str, ...] | None = None) -> dict:
        name = (lambda label: identities[label]) if identities else subject_name
        return {
            "seed": self.seed,
            "subjects": {
                name(label): {"train": self.train[label], "validation": self.validation[label]}
                for label in sorted(self.train)
            },
        }

    @classmethod
    def from_json(cls, data: dict, identities: list[str] | None = None) -> "Split":
        subjects = data["subjects"]
        label = identities.index if identities else subject_label
        train = {label(s): list(v["train"]) for s, v in subjects.items()}
        validation = {label(s): list(v["validation"]) for s, v in subjects.items()}
        return cls(int(data["seed"]), train, validation)
