"""The reconstruction bundle (version 1): a folder with ``manifest.json`` and the PNGs it names.

This is the only thing the attack hands to the survey and the analysis, so reading one validates every
entry and reports all problems at once, naming each; a bundle is written into a temporary folder and
swapped into place, so an interrupted run leaves either the old bundle or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

FORMAT = "mi-harness/bundle"
VERSION = 1
ATTACKS = ("mi-face", "mi-face-blackbox", "deblur", "external")
ATTACK_OPTIONS = ("tv",)
"""What may follow an attack's name after '+': the options that make it a different condition for people
(``mi-face+tv``: MI-Face with the total-variation image prior), so the survey and the analysis group it apart."""


def known_attack(name: object) -> bool:
    """An attack of ``ATTACKS``, optionally with ``+OPTION`` suffixes from ``ATTACK_OPTIONS``."""
    if not isinstance(name, str):
        return False
    base, *options = name.split("+")
    return base in ATTACKS and all(option in ATTACK_OPTIONS for option in options)


def attack_choices() -> str:
    return ", ".join(ATTACKS) + " (each optionally +" + "/+".join(ATTACK_OPTIONS) + ")"
ROLES = ("train", "validation")
DISPLAY_HEIGHT = 224
ITEM_NUMBERS = ("confidence", "iterations", "queries", "seconds")


class BundleError(ValueError):
    """A bundle that must not be imported; ``problems`` lists every entry that is wrong."""

    def __init__(self, where: Path | str, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  - ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"invalid bundle {where}:\n  - {shown}{more}")


@dataclass
class GalleryImage:
    subject: str
    image: str
    role: str


@dataclass
class Item:
    id: str
    subject: str
    model: str
    attack: str
    countermeasure: str
    image: str
    aux_image: str | None = None
    confidence: float | None = None
    iterations: int | None = None
    queries: int | None = None
    seconds: float | None = None
    params: dict = field(default_factory=dict)


@dataclass
class Bundle:
    dataset: dict
    gallery: list[GalleryImage]
    items: list[Item]
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    root: Path | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        width, height = self.dataset["image_size"]
        return int(width), int(height)

    @property
    def display_size(self) -> tuple[int, int]:
        """How large the survey shows a reconstruction, in CSS pixels: the dataset's ``display_size`` if it gives
        one, else the image scaled to 224 pixels high (the AT&T faces at 2x)."""
        given = self.dataset.get("display_size")
        if given:
            return int(given[0]), int(given[1])
        width, height = self.image_size
        return round(DISPLAY_HEIGHT * width / height), DISPLAY_HEIGHT

    def path(self, relative: str) -> Path:
        assert self.root is not None, "bundle not on disk"
        return self.root / relative

    def load_image(self, relative: str) -> np.ndarray:
        """A bundle image as float32 in [0, 1]."""
        with Image.open(self.path(relative)) as img:
            return np.asarray(img, dtype=np.float32) / 255.0

    def manifest(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "created": self.created,
            "dataset": self.dataset,
            "gallery": [asdict(g) for g in self.gallery],
            "items": [asdict(i) for i in self.items],
        }


def to_png_pixels(image: np.ndarray, stretch: bool) -> np.ndarray:
    """8-bit pixels; reconstructions are contrast-stretched to the full range, as the paper showed them."""
    image = np.asarray(image, dtype=np.float64)
    if stretch:
        lo, hi = image.min(), image.max()
        image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def write_bundle(bundle: Bundle, destination: str | os.PathLike, images: dict[str, np.ndarray],
                 copy_from: Path | None = None) -> Path:
    """Write ``bundle`` to ``destination`` with ``images`` (relative path -> uint8 pixels).

    Images the manifest names that are not in ``images`` are copied from ``copy_from`` (an existing bundle
    being extended). The folder appears complete or not at all.
    """
    destination = Path(destination).resolve()
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        names = [g.image for g in bundle.gallery] + [i.image for i in bundle.items] + \
                [i.aux_image for i in bundle.items if i.aux_image]
        for name in names:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if name in images:
                Image.fromarray(images[name], mode="L").save(target)
            elif copy_from is not None and (copy_from / name).is_file():
                shutil.copyfile(copy_from / name, target)
            else:
                raise BundleError(destination, [f"{name}: no pixels given for this image"])
        (staging / "manifest.json").write_text(json.dumps(bundle.manifest(), indent=1))
        read_bundle(staging)  # never publish a bundle this module would refuse to read
        old = None
        if destination.exists():
            old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
            os.replace(destination, old)
        os.replace(staging, destination)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    bundle.root = destination
    return destination


def _safe_relative(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _check_image(root: Path, name: object, size: tuple[int, int], where: str, problems: list[str]) -> None:
    if not _safe_relative(name):
        problems.append(f"{where}: image path {name!r} must be a relative path inside the bundle")
        return
    path = root / str(name)
    if not path.is_file():
        problems.append(f"{where}: image {name} is missing")
        return
    try:
        with Image.open(path) as img:
            fmt, mode, got = img.format, img.mode, img.size
    except (UnidentifiedImageError, OSError):
        problems.append(f"{where}: {name} is not a readable image")
        return
    if fmt != "PNG" or mode != "L":
        problems.append(f"{where}: {name} is {fmt} mode {mode}, expected an 8-bit greyscale PNG")
    if got != size:
        problems.append(f"{where}: {name} is {got[0]}x{got[1]}, expected {size[0]}x{size[1]}")


def read_bundle(folder: str | os.PathLike) -> Bundle:
    """Read and validate a bundle; any problem raises BundleError listing every bad entry."""
    root = Path(folder)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(root, ["manifest.json is missing (is this a bundle folder?)"])
    try:
        data = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(root, [f"manifest.json is not valid JSON ({exc})"]) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(root, [f"manifest.json: format must be {FORMAT!r}"])
    if data.get("version") != VERSION:
        raise BundleError(root, [f"manifest.json: unknown version {data.get('version')!r} "
                                 f"(this reader knows {VERSION})"])
    problems: list[str] = []
    dataset = data.get("dataset")
    try:
        width, height = (int(v) for v in dataset["image_size"])
        size = (width, height)
    except (TypeError, KeyError, ValueError):
        raise BundleError(root, ["dataset.image_size must be [width, height]"]) from None

    gallery = []
    for n, entry in enumerate(data.get("gallery") or []):
        where = f"gallery[{n}]"
        try:
            g = GalleryImage(str(entry["subject"]), entry["image"], entry["role"])
        except (TypeError, KeyError) as exc:
            problems.append(f"{where}: missing field {exc}")
            continue
        if g.role not in ROLES:
            problems.append(f"{where}: role {g.role!r} must be one of {', '.join(ROLES)}")
        _check_image(root, g.image, size, where, problems)
        gallery.append(g)

    items, seen = [], set()
    for n, entry in enumerate(data.get("items") or []):
        where = f"items[{n}]"
        try:
            known = {f for f in Item.__dataclass_fields__ if f in entry}
            item = Item(**{f: entry[f] for f in known})
        except TypeError as exc:
            problems.append(f"{where}: {exc}")
            continue
        where = f"item {item.id!r}"
        if not isinstance(item.id, str) or not item.id:
            problems.append(f"items[{n}]: id must be a non-empty string")
        elif item.id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(item.id)
        if not known_attack(item.attack):
            problems.append(f"{where}: attack {item.attack!r} must be one of {attack_choices()}")
        for name in ("subject", "model", "countermeasure"):
            if not isinstance(getattr(item, name), str) or not getattr(item, name):
                problems.append(f"{where}: {name} must be a non-empty string")
        for name in ITEM_NUMBERS:
            value = getattr(item, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                problems.append(f"{where}: {name} must be a number or null, got {value!r}")
        if not isinstance(item.params, dict):
            problems.append(f"{where}: params must be an object")
        _check_image(root, item.image, size, where, problems)
        if item.aux_image is not None:
            _check_image(root, item.aux_image, size, f"{where} aux_image", problems)
        items.append(item)
    subjects = {g.subject for g in gallery}
    for item in items:
        if gallery and item.subject not in subjects:
            problems.append(f"item {item.id!r}: subject {item.subject!r} has no image in the gallery")
    if not items:
        problems.append("the bundle has no items")
    if problems:
        raise BundleError(root, problems)
    return Bundle(dataset=dataset, gallery=gallery, items=items, created=str(data.get("created", "")), root=root)
