"""The real faces a bundle carries for lineups, and the dataset section that says how they were split."""
from __future__ import annotations

import numpy as np

from .bundle import GalleryImage, to_png_pixels
from .faces import HEIGHT, WIDTH, Faces, Split, subject_name


def dataset_section(split: Split, note: str | None = None) -> dict:
    section = {"name": "att_faces", "image_size": [WIDTH, HEIGHT], "split_seed": split.seed,
               "split": split.to_json()["subjects"]}
    if note:
        section["note"] = note
    return section


def gallery_images(faces: Faces, split: Split) -> tuple[list[GalleryImage], dict[str, np.ndarray]]:
    """Every AT&T photo, with its role in the split; the pixels are written unchanged (8-bit)."""
    entries, images = [], {}
    for role, numbers in (("train", split.train), ("validation", split.validation)):
        for label, nums in numbers.items():
            for number in nums:
                name = f"gallery/{subject_name(label)}/{number}.png"
                entries.append(GalleryImage(subject_name(label), name, role))
                images[name] = to_png_pixels(faces.images[faces.index_of(label, number)], stretch=False)
    entries.sort(key=lambda g: (int(g.subject[1:]), g.image))
    return entries, images
