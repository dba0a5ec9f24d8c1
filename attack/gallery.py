"""The gallery a bundle made by the attack carries (the AT&T faces, or the gallery a model was trained on), and the
dataset section that says how it was split."""
from __future__ import annotations

import re

import numpy as np

from mi_harness.bundle import GalleryImage, to_png_pixels
from mi_harness.bundle import dataset_section as bundle_dataset_section
from mi_harness.evaluate import References

from .faces import HEIGHT, WIDTH, Faces, Split, subject_name

DATASET = "att_faces"


def dataset_section(split: Split, faces: Faces | None = None, note: str | None = None) -> dict:
    """The AT&T faces, or another gallery at the models' input size (grey: the paper's models see grey)."""
    other = faces is not None and faces.identities is not None
    name = faces.root.name if other else DATASET
    size = (faces.shape[1], faces.shape[0]) if other else (WIDTH, HEIGHT)
    return bundle_dataset_section(name, size, "L", split_seed=split.seed,
                                  split=split.to_json(faces.identities if other else None)["subjects"],
                                  **({"note": note} if note else {}))


def gallery_image_name(label: int, number: int, faces: Faces | None = None) -> str:
    """Where a bundle keeps a photo: ``gallery/s3/7.png`` for AT&T, ``gallery/<identity>/<n>.png`` otherwise."""
    identity = faces.name_of(label) if faces is not None else subject_name(label)
    return f"gallery/{re.sub(r'[^A-Za-z0-9_.-]', '_', identity)}/{number}.png"


def gallery_images(faces: Faces, split: Split) -> tuple[list[GalleryImage], dict[str, np.ndarray]]:
    """Every photo, with its role in the split; the pixels are written unchanged (8-bit)."""
    entries, images = [], {}
    for role, numbers in (("train", split.train), ("validation", split.validation)):
        for label, nums in numbers.items():
            for number in nums:
                name = gallery_image_name(label, number, faces)
                entries.append(GalleryImage(faces.name_of(label), name, role))
                images[name] = to_png_pixels(faces.images[faces.index_of(label, number)], stretch=False)
    order = {name: k for k, name in enumerate(faces.identities or [])}
    entries.sort(key=lambda g: (order[g.subject] if order else int(g.subject[1:]), g.image))
    return entries, images


def att_references(faces: Faces, split: Split) -> References:
    """The AT&T photos already in memory as the judges' references (what a bundle's gallery holds, unread)."""
    names = [gallery_image_name(int(label), int(number)) for label, number in zip(faces.labels, faces.numbers)]
    roles = ["train" if int(n) in split.train[int(label)] else "validation"
             for label, n in zip(faces.labels, faces.numbers)]
    return References(faces.images, faces.labels.copy(), [subject_name(k) for k in range(int(faces.labels.max()) + 1)],
                      names, roles)
