"""Turning reconstructions made elsewhere (a folder of images and a CSV) into a bundle.

The CSV needs ``file`` and ``subject`` (s1..s40); ``model``, ``attack`` and ``countermeasure`` are optional
(defaults: ``unknown``, ``external``, ``none``), and every other column is kept in the item's params so it
can be grouped on later. Colour images are converted to greyscale, and an image that is an exact integer
multiple of 92x112 (the paper authors' images are 2x) is reduced by box averaging; any other size is an error.
Everything is checked before anything is written.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .bundle import Bundle, BundleError, Item, attack_choices, known_attack, to_png_pixels, write_bundle
from .faces import HEIGHT, WIDTH, Faces, FacesError, Split, subject_label
from .gallery import dataset_section, gallery_images

REQUIRED = ("file", "subject")
NAMED = ("file", "subject", "model", "attack", "countermeasure")


def _load_external_image(path: Path) -> tuple[np.ndarray, str | None]:
    with Image.open(path) as img:
        img.load()
        grey = img.convert("L")
    w, h = grey.size
    if (w, h) == (WIDTH, HEIGHT):
        return np.asarray(grey), None
    factor = w // WIDTH
    if factor >= 2 and (w, h) == (WIDTH * factor, HEIGHT * factor):
        return np.asarray(grey.resize((WIDTH, HEIGHT), Image.Resampling.BOX)), f"{w}x{h}"
    raise ValueError(f"is {w}x{h}; expected {WIDTH}x{HEIGHT} or a whole multiple of it")


def convert_folder(folder: str | Path, csv_path: str | Path, destination: str | Path, faces: Faces,
                   split_seed: int = 0, where: dict[str, str] | None = None) -> Bundle:
    folder, csv_path = Path(folder), Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BundleError(csv_path, [f"cannot read the CSV ({exc})"]) from None
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise BundleError(csv_path, [f"the CSV has no column {c!r} (it has: {', '.join(columns)})" for c in missing])
    for column in (where or {}):
        if column not in columns:
            raise BundleError(csv_path, [f"--where names column {column!r}, which the CSV does not have"])

    problems, items, images, ids = [], [], {}, set()
    for line, row in enumerate(rows, start=2):
        if any(row.get(c) != v for c, v in (where or {}).items()):
            continue
        where_ = f"{csv_path.name} line {line}"
        try:
            subject_label(row["subject"])
        except FacesError as exc:
            problems.append(f"{where_}: {exc}")
            continue
        attack = row.get("attack") or "external"
        if not known_attack(attack):
            problems.append(f"{where_}: attack {attack!r} must be one of {attack_choices()}")
            continue
        item_id = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(row["file"]).stem)
        if item_id in ids:
            problems.append(f"{where_}: file {row['file']!r} gives id {item_id!r} twice")
            continue
        ids.add(item_id)
        path = folder / row["file"]
        try:
            pixels, resized_from = _load_external_image(path)
        except FileNotFoundError:
            problems.append(f"{where_}: image {path} is missing")
            continue
        except (UnidentifiedImageError, OSError):
            problems.append(f"{where_}: {path} is not a readable image")
            continue
        except ValueError as exc:
            problems.append(f"{where_}: {path} {exc}")
            continue
        params = {k: v for k, v in row.items() if k not in NAMED and k is not None}
        params["source_file"] = row["file"]
        if resized_from:
            params["resized_from"] = resized_from
        name = f"items/{item_id}.png"
        images[name] = to_png_pixels(pixels / 255.0, stretch=False)
        items.append(Item(id=item_id, subject=row["subject"], model=row.get("model") or "unknown", attack=attack,
                          countermeasure=row.get("countermeasure") or "none", image=name, params=params))
    if problems:
        raise BundleError(csv_path, problems)
    if not items:
        raise BundleError(csv_path, ["no rows selected: the CSV is empty or --where matched nothing"])

    split = Split.make(split_seed)
    gallery, gallery_pixels = gallery_images(faces, split)
    images.update(gallery_pixels)
    note = (f"reconstructions converted from {csv_path.name}; their training split is unknown, "
            f"gallery roles follow split seed {split_seed}")
    bundle = Bundle(dataset=dataset_section(split, note), gallery=gallery, items=items)
    write_bundle(bundle, destination, images)
    return bundle
