"""Galleries: the real photos of each identity that lineups, judges and attacks use, from any dataset.

A gallery is read from a folder with one subfolder per identity (the ImageFolder layout attack toolboxes use; the
AT&T faces' ``s1..s40/1..10.pgm`` is one), or from a CSV with columns ``file`` and ``identity`` (``subject`` is
accepted for it), an optional ``role`` (train / validation) and any other columns kept as attributes for lineup
matching. Any image Pillow reads, any size, colour or grey. Everything is checked when the gallery is opened, and
every problem is reported at once, naming the file, so a bad dataset fails before any work starts.

Identities and photos sort naturally (``s2`` before ``s10``, ``2.pgm`` before ``10.pgm``), so the order, and the
seeded train/validation split that follows from it, is the same on every machine.
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from .problems import Problems

ROLES = ("train", "validation")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pbm", ".bmp", ".tif", ".tiff", ".webp",
                            ".gif"})
IDENTITY_COLUMNS = ("identity", "subject")
"""The CSV column naming a photo's identity; ``subject`` is what the AT&T files and version 1 bundles say."""
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
MAX_SIDE = 4096
"""Photos larger than this on a side are refused: a face gallery has no use for them, and a file that declares
huge dimensions must not be decoded."""
TRAIN_SHARE = 0.7
"""The share of each identity's photos given the training role when the gallery does not say (AT&T: 7 of 10)."""


class GalleryError(Problems):
    """A gallery that cannot be used; ``problems`` names every bad file or row."""

    kind = "gallery"


def natural_key(text: str) -> tuple:
    """``s2`` before ``s10``: digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


@dataclass(frozen=True)
class Photo:
    identity: str
    key: str
    """``identity/stem``: unique within the gallery, and how a bundle names the photo (``gallery/<key>.png``)."""
    path: Path
    size: tuple[int, int]
    colour: bool
    role: str | None = None
    attributes: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Gallery:
    name: str
    source: Path
    photos: list[Photo]

    @property
    def identities(self) -> list[str]:
        return sorted({p.identity for p in self.photos}, key=natural_key)

    def photos_of(self, identity: str) -> list[Photo]:
        return [p for p in self.photos if p.identity == identity]

    @property
    def colour(self) -> bool:
        return any(p.colour for p in self.photos)

    @property
    def common_size(self) -> tuple[int, int] | None:
        """The size every photo has, or None when they differ."""
        sizes = {p.size for p in self.photos}
        return sizes.pop() if len(sizes) == 1 else None

    def roles(self, seed: int, train_share: float = TRAIN_SHARE) -> dict[str, str]:
        """Photo key -> role. Roles the gallery gives are kept; the rest are split per identity with a seeded
        permutation so that ``train_share`` of its photos train (the AT&T split of ``attack.faces.Split`` for the
        same seed), keeping at least one photo of each role when an identity has two or more."""
        rng = np.random.default_rng(seed)
        roles = {}
        for identity in self.identities:
            photos = self.photos_of(identity)
            given = [p for p in photos if p.role]
            roles.update({p.key: p.role for p in given})
            free = [p for p in photos if not p.role]
            order = rng.permutation(len(free))
            n = len(photos)
            target = min(max(round(train_share * n), 1), n - 1) if n > 1 else n
            given_train = sum(p.role == "train" for p in given)
            n_train = min(max(target - given_train, 0), len(free))
            if n > 1 and free and n_train == len(free) and given_train == len(given):
                n_train -= 1  # keep a validation photo
            if n > 1 and free and n_train == 0 and given_train == 0:
                n_train = 1  # and a training one
            for rank, index in enumerate(order):
                roles[free[index].key] = "train" if rank < n_train else "validation"
        return roles


def load_photo(path: Path, size: tuple[int, int] | None = None, colour: bool = False) -> np.ndarray:
    """A photo as uint8 pixels, (height, width) grey or (height, width, 3) colour, resized to ``size`` (width,
    height) if given: box filtering for a whole-number reduction (exact for the paper authors' 2x images), else
    Lanczos."""
    with Image.open(path) as img:
        img.load()
        converted = img.convert("RGB" if colour else "L")
    if size is not None and converted.size != tuple(size):
        w, h = converted.size
        whole = w % size[0] == 0 and h % size[1] == 0 and w // size[0] == h // size[1] >= 2
        converted = converted.resize(tuple(size), Image.Resampling.BOX if whole else Image.Resampling.LANCZOS)
    return np.asarray(converted)


def probe_image(path: Path) -> tuple[tuple[int, int], bool]:
    """A file's size and whether it is colour, read from its header only; refuses what a gallery cannot use
    (not an image, huge declared dimensions) with a message naming the problem. The pixels are decoded later,
    where a truncated file is reported the same way."""
    try:
        with Image.open(path) as img:
            size, mode = img.size, img.mode
    except Image.DecompressionBombError:
        raise ValueError("declares dimensions too large for a face photo") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"is not a readable image ({exc.__class__.__name__})") from None
    if max(size) > MAX_SIDE or min(size) < 1:
        raise ValueError(f"is {size[0]}x{size[1]}; a photo may be at most {MAX_SIDE} pixels on a side")
    return size, mode not in GREY_MODES


def _photo(identity: str, key: str, path: Path, problems: list[str], role: str | None = None,
           attributes: dict | None = None) -> Photo | None:
    try:
        size, colour = probe_image(path)
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return None
    return Photo(identity, key, path, size, colour, role, attributes or {})


def from_folder(root: str | os.PathLike, name: str | None = None) -> Gallery:
    """One subfolder per identity holding its photos (files Pillow does not read by suffix are ignored)."""
    root = Path(root)
    if not root.is_dir():
        raise GalleryError(root, ["not a folder"])
    problems, photos = [], []
    folders = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: natural_key(d.name))
    if not folders:
        raise GalleryError(root, ["no identity folders: expected one subfolder per identity holding its photos"])
    for folder in folders:
        files = sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda f: natural_key(f.name))
        if not files:
            problems.append(f"{folder}: no photos ({', '.join(sorted(IMAGE_SUFFIXES))})")
        stems = [f.stem for f in files]
        for f in files:
            if stems.count(f.stem) > 1:
                problems.append(f"{f}: another photo of {folder.name} has the same name ({f.stem}); rename one")
                continue
            photo = _photo(folder.name, f"{folder.name}/{f.stem}", f, problems)
            if photo:
                photos.append(photo)
    if problems:
        raise GalleryError(root, problems)
    return Gallery(name or root.name, root, photos)


def read_identity_csv(csv_path: Path, error: type[Problems]) -> tuple[list[str], list[dict], str]:
    """A CSV that lists images by ``file`` and names each one's identity (``identity`` or ``subject``): its columns,
    its rows and the identity column's name; an unreadable file or a missing column raises ``error``."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise error(csv_path, [f"cannot read the CSV ({exc})"]) from None
    identity_column = next((c for c in IDENTITY_COLUMNS if c in columns), None)
    if "file" not in columns or identity_column is None:
        raise error(csv_path, [f"the CSV needs columns 'file' and 'subject' (or 'identity'); it has: "
                               f"{', '.join(columns)}"])
    return columns, rows, identity_column


def from_csv(csv_path: str | os.PathLike, name: str | None = None) -> Gallery:
    """``file`` (relative to the CSV's folder), ``identity`` or ``subject``, optional ``role``, other columns kept
    as the photo's attributes."""
    csv_path = Path(csv_path)
    columns, rows, identity_column = read_identity_csv(csv_path, GalleryError)
    attribute_columns = [c for c in columns if c not in ("file", "role", *IDENTITY_COLUMNS) and c]
    problems, photos, keys = [], [], set()
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path.name} line {line}"
        identity, file, role = (row.get(identity_column) or "").strip(), (row.get("file") or "").strip(), \
            (row.get("role") or "").strip() or None
        if not identity or not file:
            problems.append(f"{where}: 'file' and '{identity_column}' must not be empty")
            continue
        if role is not None and role not in ROLES:
            problems.append(f"{where}: role {role!r} must be one of {', '.join(ROLES)} or empty")
            continue
        relative = PurePosixPath(file.replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts:
            problems.append(f"{where}: file {file!r} must be a path inside {csv_path.parent}")
            continue
        key = f"{identity}/{relative.stem}"
        if key in keys:
            problems.append(f"{where}: {identity} has two photos named {relative.stem}")
            continue
        keys.add(key)
        path = csv_path.parent / relative
        if not path.is_file():
            problems.append(f"{where}: {path} is missing")
            continue
        photo = _photo(identity, key, path, problems, role, {c: row.get(c) or "" for c in attribute_columns})
        if photo:
            photos.append(photo)
    if not rows:
        problems.append("the CSV has no rows")
    if problems:
        raise GalleryError(csv_path, problems)
    photos.sort(key=lambda p: (natural_key(p.identity), natural_key(p.key)))
    return Gallery(name or csv_path.stem, csv_path, photos)


def open_gallery(source: str | os.PathLike, name: str | None = None) -> Gallery:
    """A CSV file or a folder of identity folders."""
    source = Path(source)
    if source.is_file():
        return from_csv(source, name)
    if source.is_dir():
        return from_folder(source, name)
    raise GalleryError(source, ["no such file or folder (a gallery is a folder of identity folders, or a CSV)"])



ENV_VAR = "MI_FACES_DIR"
DEFAULT_DIRS = (Path("~/.local/share/mi-harness/att_faces"), Path("../shared/data/att_faces"))
HOW_TO_GET = ("run `mi-harness fetch-faces` (online), or pass --faces DIR pointing at an ORL folder "
              "(s1..s40/1..10.pgm)")


def default_gallery_dir(option: str | os.PathLike | None = None) -> Path:
    """The built-in gallery, the AT&T faces: the first of the option, ``$MI_FACES_DIR`` and the defaults that
    exists; otherwise an error that says where it looked and how to get them."""
    candidates: list[tuple[str, Path]] = []
    if option:
        candidates.append(("--faces", Path(option)))
    elif os.environ.get(ENV_VAR):
        candidates.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    else:
        candidates += [("default", d) for d in DEFAULT_DIRS]
    for _, path in candidates:
        path = path.expanduser()
        if (path / "s1").is_dir():
            return path.resolve()
    looked = ", ".join(f"{src} {p.expanduser()}" for src, p in candidates)
    raise GalleryError(looked, [f"no AT&T faces found; {HOW_TO_GET}"])
