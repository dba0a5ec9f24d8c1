"""The reconstruction bundle: a folder with ``manifest.json`` and the PNGs it names (DESIGN.md).

This is the only thing an attack hands to the survey and the analysis, so reading one validates every entry and
reports all problems at once, naming each; a bundle is written into a temporary folder and swapped into place, so an
interrupted run leaves either the old bundle or the new one, never half of one.

Version 2 holds any face dataset: the dataset section names the images' size, the size the survey shows them at and
their colour mode (``L`` grey or ``RGB``); a gallery photo may carry attributes (for matched lineup fillers); a
deblurring item names its blur and its source photo in typed fields. Version 1 bundles (AT&T, grey, the blur and the
source photo in ``params``) are still read, into the same objects.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from .problems import Problems

FORMAT = "mi-harness/bundle"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MODES = ("L", "RGB")
ATTACKS = ("mi-face", "mi-face-blackbox", "deblur", "external")
ATTACK_OPTIONS = ("tv", "faces")
"""What may follow an attack's name after '+': the options that make it a different condition for people
(``mi-face+tv``: MI-Face with the total-variation image prior; ``mi-face+faces``: the attack's "faces" preset,
-log f and the normalized step from mid-grey), so the survey and the analysis group it apart."""
ROLES = ("train", "validation")
ITEM_NUMBERS = ("confidence", "iterations", "queries", "seconds")
ITEM_TEXTS = ("id", "subject", "model", "attack", "countermeasure")
DISPLAY_HEIGHT = 224
"""How tall the survey shows a reconstruction when the bundle does not say (the AT&T faces at 2x)."""
MAX_SIDE = 1024
"""The largest image side a bundle may declare: lineups show faces, and the limit keeps a hostile manifest from
making the server decode huge images."""


def known_attack(name: object) -> bool:
    """An attack of ``ATTACKS``, optionally with ``+OPTION`` suffixes from ``ATTACK_OPTIONS``."""
    if not isinstance(name, str):
        return False
    base, *options = name.split("+")
    return base in ATTACKS and all(option in ATTACK_OPTIONS for option in options)


def attack_choices() -> str:
    return ", ".join(ATTACKS) + " (each optionally +" + "/+".join(ATTACK_OPTIONS) + ")"


class BundleError(Problems):
    """A bundle that must not be imported; ``problems`` lists every entry that is wrong."""

    kind = "bundle"


@dataclass
class GalleryImage:
    subject: str
    image: str
    role: str
    attributes: dict = field(default_factory=dict)


@dataclass
class Item:
    id: str
    subject: str
    model: str
    attack: str
    countermeasure: str
    image: str
    aux_image: str | None = None
    """The blurred photo a deblurring attack started from, as the survey shows it beside the reconstruction."""
    blur: str | None = None
    """A deblurring item's blur, e.g. ``gaussian:8``."""
    source_photo: str | None = None
    """A deblurring item's source: the gallery image (bundle path) that was blurred. Lineups never show it, and
    judges leave it out of the reference photos, since the blurred copy would match it trivially."""
    confidence: float | None = None
    iterations: int | None = None
    queries: int | None = None
    seconds: float | None = None
    params: dict = field(default_factory=dict)


def dataset_section(name: str, image_size: tuple[int, int], mode: str = "L",
                    display_size: tuple[int, int] | None = None, **extra) -> dict:
    """The manifest's ``dataset``: name, image size (width, height), colour mode, the size the survey shows a
    reconstruction at (by default 224 pixels high at the images' aspect), and any extra facts (split seed, note)."""
    width, height = (int(v) for v in image_size)
    display = display_size or (round(DISPLAY_HEIGHT * width / height), DISPLAY_HEIGHT)
    return {"name": name, "image_size": [width, height], "mode": mode, "display_size": [int(v) for v in display],
            **extra}


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
    def mode(self) -> str:
        return self.dataset.get("mode", "L")

    @property
    def display_size(self) -> tuple[int, int]:
        """How large the survey shows a reconstruction, in CSS pixels."""
        width, height = self.dataset.get("display_size") or dataset_section("", self.image_size)["display_size"]
        return int(width), int(height)

    def path(self, relative: str) -> Path:
        assert self.root is not None, "bundle not on disk"
        return self.root / relative

    def load_image(self, relative: str) -> np.ndarray:
        """A bundle image as float32 in [0, 1]: (height, width) grey, or (height, width, 3) colour."""
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


def write_bundle(bundle: Bundle, destination: str | os.PathLike,
                 images: dict[str, np.ndarray | Callable[[], np.ndarray]], copy_from: Path | None = None) -> Path:
    """Write ``bundle`` to ``destination`` with ``images`` (relative path -> uint8 pixels, 2-D grey or
    (h, w, 3) colour, or a function that returns them, so a gallery of thousands of photos is read one at a time).

    Images the manifest names that are not in ``images`` are copied from ``copy_from`` (an existing bundle
    being extended). The folder appears complete or not at all.
    """
    destination = Path(destination).resolve()
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        names = [g.image for g in bundle.gallery] + [i.image for i in bundle.items] + \
                [i.aux_image for i in bundle.items if i.aux_image]
        for name in tqdm(dict.fromkeys(names), desc=f"writing {destination.name}", unit="image", leave=False,
                         disable=None if len(names) > 1000 else True):
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if name in images:
                try:
                    pixels = images[name]() if callable(images[name]) else images[name]
                except (OSError, ValueError) as exc:
                    raise BundleError(destination, [f"{name}: its source image cannot be read ({exc})"]) from None
                Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB").convert(bundle.mode).save(target)
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
    if not isinstance(name, str) or not name or "\x00" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _check_image(root: Path, name: object, size: tuple[int, int], mode: str, where: str,
                 problems: list[str]) -> None:
    """The file exists inside the bundle, is a PNG of the bundle's mode and size, and is whole (every chunk's
    checksum is read), so a truncated or corrupt image is refused here, not when a study serves it."""
    if not _safe_relative(name):
        problems.append(f"{where}: image path {name!r} must be a relative path inside the bundle")
        return
    path = root / str(name)
    if not path.is_file():
        problems.append(f"{where}: image {name} is missing")
        return
    try:
        with Image.open(path) as img:
            fmt, got_mode, got = img.format, img.mode, img.size
            if fmt == "PNG" and got_mode == mode and got == size:
                img.verify()
    except Image.DecompressionBombError:
        problems.append(f"{where}: {name} declares dimensions too large to be a face image")
        return
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        problems.append(f"{where}: {name} is not a readable image, or it is truncated or corrupt")
        return
    expected = "8-bit greyscale" if mode == "L" else "8-bit RGB"
    if fmt != "PNG" or got_mode != mode:
        problems.append(f"{where}: {name} is {fmt} mode {got_mode}, expected an {expected} PNG")
    if got != size:
        problems.append(f"{where}: {name} is {got[0]}x{got[1]}, expected {size[0]}x{size[1]}")


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value) and "\x00" not in value


def _read_dataset(data: dict, version: int, root: Path) -> tuple[dict, tuple[int, int], str]:
    dataset = data.get("dataset")
    if not isinstance(dataset, dict):
        raise BundleError(root, ["dataset must be an object"])
    try:
        width, height = dataset["image_size"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (width, height)):
            raise TypeError
    except (TypeError, KeyError, ValueError):
        raise BundleError(root, ["dataset.image_size must be [width, height], two whole numbers"]) from None
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BundleError(root, [f"dataset.image_size {width}x{height}: each side must be 1 to {MAX_SIDE}"])
    if version == 1:  # AT&T, grey, shown at 2x
        dataset = dataset_section(str(dataset.get("name") or "att_faces"), (width, height), "L",
                                  **{k: v for k, v in dataset.items() if k not in ("name", "image_size")})
    mode = dataset.get("mode")
    if mode not in MODES:
        raise BundleError(root, [f"dataset.mode must be one of {', '.join(MODES)}, got {mode!r}"])
    display = dataset.get("display_size")
    if not (isinstance(display, list) and len(display) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 2048 for v in display)):
        raise BundleError(root, [f"dataset.display_size must be [width, height] in 16..2048, got {display!r}"])
    if not isinstance(dataset.get("name"), str):
        raise BundleError(root, ["dataset.name must be a string"])
    return dataset, (width, height), mode


def _upgrade_item(entry: dict, gallery_images: set[str]) -> dict:
    """A version 1 item in version 2's terms: the blur and the source photo ("s3/7.pgm") move out of params."""
    params = dict(entry.get("params") or {}) if isinstance(entry.get("params"), dict) else entry.get("params")
    entry = dict(entry)
    if isinstance(params, dict):
        blur = params.pop("blur", None)
        source = params.pop("blurred_photo", None)
        if blur:
            entry["blur"] = str(blur)
        if isinstance(source, str) and source:
            path = PurePosixPath(source)
            candidate = f"gallery/{path.parent.name}/{path.stem}.png"
            entry["source_photo"] = candidate if candidate in gallery_images else None
        entry["params"] = params
    return entry


def read_bundle(folder: str | os.PathLike) -> Bundle:
    """Read and validate a bundle; any problem raises BundleError listing every bad entry."""
    root = Path(folder)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(root, ["manifest.json is missing (is this a bundle folder?)"])
    try:
        data = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(root, [f"manifest.json is not valid JSON ({exc.__class__.__name__})"]) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BundleError(root, [f"manifest.json: format must be {FORMAT!r}"])
    version = data.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise BundleError(root, [f"manifest.json: unknown version {version!r} "
                                 f"(this reader knows {', '.join(map(str, READABLE_VERSIONS))})"])
    dataset, size, mode = _read_dataset(data, version, root)
    problems: list[str] = []
    for section in ("gallery", "items"):
        if not isinstance(data.get(section, []), list):
            raise BundleError(root, [f"{section} must be a list"])

    gallery, gallery_names = [], set()
    for n, entry in enumerate(data.get("gallery") or []):
        where = f"gallery[{n}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        g = GalleryImage(entry.get("subject"), entry.get("image"), entry.get("role"),
                         entry.get("attributes") or {})
        if not _text(g.subject):
            problems.append(f"{where}: subject must be a non-empty string")
        if g.role not in ROLES:
            problems.append(f"{where}: role {g.role!r} must be one of {', '.join(ROLES)}")
        if not isinstance(g.attributes, dict) or not all(isinstance(v, str) for v in g.attributes.values()):
            problems.append(f"{where}: attributes must be an object of strings")
        if g.image in gallery_names:
            problems.append(f"{where}: image {g.image} is listed twice")
        _check_image(root, g.image, size, mode, where, problems)
        gallery_names.add(g.image)
        gallery.append(g)

    items, seen = [], set()
    for n, entry in enumerate(data.get("items") or []):
        if not isinstance(entry, dict):
            problems.append(f"items[{n}]: must be an object")
            continue
        if version == 1:
            entry = _upgrade_item(entry, gallery_names)
        unknown = sorted(set(entry) - set(Item.__dataclass_fields__))
        if unknown:
            problems.append(f"items[{n}]: unknown field(s) {', '.join(unknown)}")
        missing = [f for f in ("id", "subject", "model", "attack", "countermeasure", "image") if f not in entry]
        if missing:
            problems.append(f"items[{n}]: missing field(s) {', '.join(missing)}")
            continue
        item = Item(**{f: entry[f] for f in Item.__dataclass_fields__ if f in entry})
        where = f"item {item.id!r}" if _text(item.id) else f"items[{n}]"
        for name in ITEM_TEXTS:
            if not _text(getattr(item, name)):
                problems.append(f"{where}: {name} must be a non-empty string")
        if _text(item.id):
            if item.id in seen:
                problems.append(f"{where}: duplicate id")
            seen.add(item.id)
        if _text(item.attack) and not known_attack(item.attack):
            problems.append(f"{where}: attack {item.attack!r} must be one of {attack_choices()}")
        for name in ITEM_NUMBERS:
            value = getattr(item, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                problems.append(f"{where}: {name} must be a number or null, got {value!r}")
        if not isinstance(item.params, dict):
            problems.append(f"{where}: params must be an object")
        if item.blur is not None and not _text(item.blur):
            problems.append(f"{where}: blur must be a non-empty string or null")
        if item.source_photo is not None and item.source_photo not in gallery_names:
            problems.append(f"{where}: source_photo {item.source_photo!r} is not an image of the gallery")
        _check_image(root, item.image, size, mode, where, problems)
        if item.aux_image is not None:
            _check_image(root, item.aux_image, size, mode, f"{where} aux_image", problems)
        items.append(item)
    subjects = {g.subject for g in gallery}
    for item in items:
        if gallery and _text(item.subject) and item.subject not in subjects:
            problems.append(f"item {item.id!r}: subject {item.subject!r} has no image in the gallery")
    if not items:
        problems.append("the bundle has no items")
    if problems:
        raise BundleError(root, problems)
    return Bundle(dataset=dataset, gallery=gallery, items=items, created=str(data.get("created", "")), root=root)
