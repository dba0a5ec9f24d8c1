"""Bundles from reconstructions made elsewhere, with the gallery they belong to.

Two layouts are read, because these are what people have:

- a folder of images plus a CSV: ``file`` and ``subject`` (or ``identity``); ``model``, ``attack``,
  ``countermeasure`` and ``blur`` are optional (defaults ``unknown``, ``external``, ``none``), and every other
  column is kept in the item's params so it can be grouped on later;
- the folder-per-class layout attack toolboxes write (``<folder>/<class>/<image>``), where ``<class>`` is a class
  index or an identity, mapped to the gallery's identities by a class map (a CSV ``class,identity`` or a JSON
  object) or, without one, taken as the identity itself.

The bundle has one image size and colour mode. The size is ``size`` if given, else the gallery's if all its photos
share one, else the reconstructions'; an image of another size is resized to it (box filter for whole-number
reductions, so the paper authors' 2x images come out exact) and says so in its params; an image of another aspect
is refused rather than distorted. The mode is colour if any image is colour, unless ``grey`` is asked for.
Everything is checked before anything is written, and every problem is reported at once.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from mi_harness.bundle import (
    Bundle,
    BundleError,
    GalleryImage,
    Item,
    attack_choices,
    dataset_section,
    known_attack,
    write_bundle,
)

from .galleries import (
    IDENTITY_COLUMNS,
    IMAGE_SUFFIXES,
    Gallery,
    GalleryError,
    load_photo,
    natural_key,
    probe_image,
    read_identity_csv,
)

NAMED = ("file", *IDENTITY_COLUMNS, "model", "attack", "countermeasure", "blur")
ASPECT_TOLERANCE = 0.02
COLOUR_LEVELS = 2.0
"""Mean distance of the channels from their mean, in 8-bit levels, above which an image is colour."""


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text) or "_"


def gallery_entries(gallery: Gallery, roles: dict[str, str], size: tuple[int, int],
                    colour: bool) -> tuple[list[GalleryImage], dict[str, Callable[[], np.ndarray]]]:
    """Every gallery photo at the bundle's size and mode, named ``gallery/<identity>/<photo>.png``, with its role
    and attributes."""
    entries, images, used = [], {}, set()
    for photo in gallery.photos:
        identity, stem = photo.key.rsplit("/", 1)
        name = f"gallery/{_safe(identity)}/{_safe(stem)}.png"
        n = 1
        while name in used:  # two identities that differ only in characters a file name cannot hold
            n += 1
            name = f"gallery/{_safe(identity)}-{n}/{_safe(stem)}.png"
        used.add(name)
        images[name] = partial(load_photo, photo.path, size, colour)  # read when written: memory stays flat
        entries.append(GalleryImage(photo.identity, name, roles[photo.key], dict(photo.attributes)))
    return entries, images


def has_colour(path: Path) -> bool:
    """Whether a file stored in a colour mode holds colour: grey pictures saved as RGB (the paper authors' are) and
    grey JPEGs, whose channels differ only by compression noise, do not."""
    rgb = load_photo(path, colour=True).astype(np.int16)
    return float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean()) > COLOUR_LEVELS


@dataclass
class Source:
    """One reconstruction to convert: where its image is, and the item fields known for it."""
    where: str
    path: Path
    subject: str
    fields: dict
    params: dict


def _check_size(size: tuple[int, int], target: tuple[int, int]) -> str | None:
    if abs(size[0] / size[1] - target[0] / target[1]) > ASPECT_TOLERANCE * target[0] / target[1]:
        return f"is {size[0]}x{size[1]}, another aspect than the bundle's {target[0]}x{target[1]}"
    return None


def build_bundle(sources: list[Source], gallery: Gallery, destination: str | Path, *, note: str,
                 split_seed: int = 0, size: tuple[int, int] | None = None, grey: bool = False) -> Bundle:
    """Check every source against the gallery, then write the bundle (gallery and items) in one go."""
    problems, probed = [], {}
    identities = set(gallery.identities)
    for source in sources:
        if source.subject not in identities:
            problems.append(f"{source.where}: identity {source.subject!r} is not in the gallery {gallery.name} "
                            f"({len(identities)} identities, e.g. {', '.join(gallery.identities[:3])})")
            continue
        if not source.path.is_file():
            problems.append(f"{source.where}: image {source.path} is missing")
            continue
        try:
            probed[source.where] = probe_image(source.path)
        except ValueError as exc:
            problems.append(f"{source.where}: {source.path} {exc}")
    if not sources:
        problems.append("no reconstructions selected: the CSV or folder is empty, or --where matched nothing")
    if problems:
        raise BundleError(destination, problems)
    sizes = {s for s, _ in probed.values()}
    target = tuple(size) if size else gallery.common_size or (sizes.pop() if len(sizes) == 1 else None)
    if target is None:
        raise BundleError(destination, [f"the reconstructions come in {len(sizes)} sizes and the gallery's photos "
                                        "differ in size: give the bundle's size (--size WxH)"])
    for source in sources:
        bad = _check_size(probed[source.where][0], target)
        if bad:
            problems.append(f"{source.where}: {source.path} {bad}")
    for photo in gallery.photos:
        bad = _check_size(photo.size, target)
        if bad:
            problems.append(f"gallery photo {photo.path} {bad}")
    if problems:
        raise BundleError(destination, problems)
    colour = not grey and any(has_colour(path) for path in
                              [s.path for s in sources if probed[s.where][1]] + [p.path for p in gallery.photos
                                                                                  if p.colour])

    items, images, ids = [], {}, set()
    for source in sources:
        item_id = _safe(source.fields.pop("id"))
        if item_id in ids:
            problems.append(f"{source.where}: gives item id {item_id!r} twice")
            continue
        ids.add(item_id)
        try:
            pixels = load_photo(source.path, target, colour)
        except (OSError, ValueError):
            problems.append(f"{source.where}: {source.path} is truncated or corrupt")
            continue
        original = probed[source.where][0]
        params = {**source.params, **({"resized_from": f"{original[0]}x{original[1]}"}
                                      if original != target else {})}
        name = f"items/{item_id}.png"
        images[name] = pixels
        items.append(Item(id=item_id, subject=source.subject, image=name, params=params, **source.fields))
    if problems:
        raise BundleError(destination, problems)
    entries, gallery_pixels = gallery_entries(gallery, gallery.roles(split_seed), target, colour)
    images.update(gallery_pixels)
    dataset = dataset_section(gallery.name, target, "RGB" if colour else "L", split_seed=split_seed, note=note)
    bundle = Bundle(dataset=dataset, gallery=entries, items=items)
    write_bundle(bundle, destination, images)
    return bundle


def _item_fields(row: dict, where: str, problems: list[str]) -> dict | None:
    attack = row.get("attack") or "external"
    if not known_attack(attack):
        problems.append(f"{where}: attack {attack!r} must be one of {attack_choices()}")
        return None
    return {"model": row.get("model") or "unknown", "attack": attack,
            "countermeasure": row.get("countermeasure") or "none", "blur": row.get("blur") or None}


def sources_from_csv(folder: str | Path, csv_path: str | Path,
                     where: dict[str, str] | None = None) -> list[Source]:
    """The reconstructions a CSV lists (``where`` keeps the rows whose columns have these values)."""
    folder, csv_path = Path(folder), Path(csv_path)
    columns, rows, identity = read_identity_csv(csv_path, BundleError)
    for column in (where or {}):
        if column not in columns:
            raise BundleError(csv_path, [f"--where names column {column!r}, which the CSV does not have"])
    problems, sources = [], []
    for line, row in enumerate(rows, start=2):
        if any(row.get(c) != v for c, v in (where or {}).items()):
            continue
        where_ = f"{csv_path.name} line {line}"
        fields = _item_fields(row, where_, problems)
        file = row.get("file") or ""
        if fields is None:
            continue
        if not file or Path(file).is_absolute() or ".." in Path(file).parts:
            problems.append(f"{where_}: file {file!r} must be a path inside {folder}")
            continue
        params = {k: v for k, v in row.items() if k not in NAMED and k is not None}
        params["source_file"] = file
        sources.append(Source(where_, folder / file, (row.get(identity) or "").strip(),
                              {"id": Path(file).stem, **fields}, params))
    if problems:
        raise BundleError(csv_path, problems)
    return sources


def read_class_map(path: str | Path) -> dict[str, str]:
    """Class (index or name) -> identity, from a CSV ``class,identity`` or a JSON object (or list by index)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, list):
                data = dict(enumerate(data))
            if not isinstance(data, dict):
                raise ValueError("a class map in JSON is an object (class -> identity) or a list")
            return {str(k): str(v) for k, v in data.items()}
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or not {"class", "identity"} <= set(rows[0]):
            raise ValueError("a class map CSV needs columns 'class' and 'identity'")
        return {row["class"].strip(): row["identity"].strip() for row in rows}
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise BundleError(path, [f"cannot read the class map ({exc})"]) from None


def sources_from_class_folders(folder: str | Path, class_map: dict[str, str] | None, *, model: str = "unknown",
                               attack: str = "external", countermeasure: str = "none") -> list[Source]:
    """``<folder>/<class>/<image>``: every image of a class folder is a reconstruction of that class's identity."""
    folder = Path(folder)
    problems, sources = [], []
    fields = _item_fields({"model": model, "attack": attack, "countermeasure": countermeasure}, "options", problems)
    if problems:
        raise BundleError(folder, problems)
    classes = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                     key=lambda d: natural_key(d.name))
    if not classes:
        raise BundleError(folder, ["no class folders: expected <folder>/<class>/<image>"])
    for directory in classes:
        identity = class_map.get(directory.name) if class_map is not None else directory.name
        if identity is None:
            problems.append(f"{directory}: class {directory.name!r} is not in the class map")
            continue
        for path in sorted((f for f in directory.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                           key=lambda f: natural_key(f.name)):
            where = f"{directory.name}/{path.name}"
            sources.append(Source(where, path, identity, {"id": f"{directory.name}-{path.stem}", **fields},
                                  {"source_file": where, "class": directory.name}))
    if problems:
        raise BundleError(folder, problems)
    return sources


def convert(destination: str | Path, gallery: Gallery, *, folder: str | Path, csv_path: str | Path | None = None,
            class_map: str | Path | None = None, where: dict[str, str] | None = None, split_seed: int = 0,
            size: tuple[int, int] | None = None, grey: bool = False, model: str = "unknown",
            attack: str = "external", countermeasure: str = "none") -> Bundle:
    """A bundle from reconstructions made elsewhere: a folder plus a CSV, or a folder per class."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(folder, ["the reconstructions' folder does not exist"])
    try:
        if csv_path is not None:
            sources = sources_from_csv(folder, csv_path, where)
            note = f"reconstructions converted from {Path(csv_path).name}"
        else:
            sources = sources_from_class_folders(folder, read_class_map(class_map) if class_map else None,
                                                 model=model, attack=attack, countermeasure=countermeasure)
            note = f"reconstructions converted from the class folders of {folder.name}"
        note += f"; their training split is unknown, gallery roles follow split seed {split_seed}"
        return build_bundle(sources, gallery, destination, note=note, split_seed=split_seed, size=size, grey=grey)
    except GalleryError as exc:
        raise BundleError(folder, exc.problems) from None
