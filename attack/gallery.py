"""The AT&T gallery a bundle made by the attack carries, and the dataset section that says how it was split."""
from __future__ import annotations

import numpy as np

from mi_harness.bundle import GalleryImage, to_png_pixels
from mi_harness.bundle import dataset_section as bundle_dataset_section
from mi_harness.evaluate import References

from .faces import HEIGHT, WIDTH, Faces, Split, subject_name

DATASET = "att_faces"


def dataset_section(split: Split, note: str | None = None) -> dict:
    return bundle_dataset_section(DATASET, (WIDTH, HEIGHT), "L", split_seed=split.seed,
                                  split=split.to_json()["subjects"], **({"note": note} if note else {}))


def gallery_image_name(label: int, number: int) -> str:
    """Where a bundle keeps an AT&T photo: ``gallery/s3/7.png`` (``mi_harness.convert`` names any gallery alike)."""
    return f"gallery/{subject_name(label)}/{number}.png"


def gallery_images(faces: Faces, split: Split) -> tuple[list[GalleryImage], dict[str, np.ndarray]]:
    """Every AT&T photo, with its role in the split; the pixels are written unchanged (8-bit)."""
    entries, images = [], {}
    for role, numbers in (("train", split.train), ("validation", split.validation)):
        for label, nums in numbers.items():
            for number in nums:
                name = gallery_image_name(label, number)
                entries.append(GalleryImage(subject_name(label), name, role))
                images[name] = to_png_pixels(faces.images[faces.index_of(label, number)], stretch=False)
    entries.sort(key=lambda g: (int(g.subject[1:]), g.image))
    return entries, images


def att_references(faces: Faces, split: Split) -> References:
    """The AT&T photos already in memory as the judges' references (what a bundle's gallery holds, unread)."""
    names = [gallery_image_name(int(label), int(number)) for label, number in zip(faces.labels, faces.numbers)]
    roles = ["train" if int(n) in split.train[int(label)] else "validation"
             for label, n in zip(faces.labels, faces.numbers)]
    return References(faces.images, faces.labels.copy(), [subject_name(k) for k in range(int(faces.labels.max()) + 1)],
                      names, roles)
