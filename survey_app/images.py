"""A lineup's images, inline in its page as ``data:`` URIs: the page and its images are one request, not eight.

Nothing in a page names an image (no URL, file name or header), and the bytes of the same face differ in every
worker's assignment: each PNG carries a private ancillary chunk (``miXn``, which decoders skip) holding an HMAC of
the assignment and the slot under a key derived from the app's secret key. So colluding workers cannot pool answers
by URL or by a hash of the bytes; the pixels are the same for everyone, as they must be. A reload shows the same
bytes (the HMAC is a function of the assignment), and rendering needs no table: each image's base64 is kept per
process, split where the chunk goes in, so a page costs one HMAC and a few string joins per image.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from markupsafe import Markup
from sqlalchemy import select

from . import db as database
from .models import Image

IMAGE_CACHE_BYTES = 96 << 20
"""Base64 text an app keeps: a gallery photo is shown in many lineups, so images are cached by id, bounded by size
rather than count (a colour gallery's photos are larger than AT&T's)."""
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"
HEAD_BYTES = 33
"""The signature and the IHDR chunk, always first in a PNG; 33 bytes, a multiple of 3, so its base64 ends clean."""
MARK_TYPE = b"miXn"
"""Ancillary (m), private (i), reserved bit clear (X), safe to copy (n): every decoder skips it."""
MARK_DATA = 18
"""Chunk data bytes: 4 length + 4 type + 18 + 4 CRC = 30, a multiple of 3, so the base64 joins need no re-encoding."""
DATA_URI = "data:image/png;base64,"


@dataclass(frozen=True)
class Encoded:
    """One stored PNG as base64: ``head`` + (a marker chunk) + ``tail`` is the base64 of the marked PNG. A PNG that
    does not start with IHDR (none does: import checks them) is served unmarked, whole in ``tail``."""
    head: str
    tail: str

    @classmethod
    def of(cls, png: bytes) -> Encoded:
        if png.startswith(PNG_HEAD):
            return cls(base64.b64encode(png[:HEAD_BYTES]).decode(), base64.b64encode(png[HEAD_BYTES:]).decode())
        return cls("", base64.b64encode(png).decode())

    def __len__(self) -> int:
        return len(self.head) + len(self.tail)


class ImageCache:
    """Least recently used entries by image id, within a budget of ``len(entry)``; one per app (its database's ids),
    shared by the process's threads."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used, self.entries, self.lock = budget, 0, OrderedDict(), threading.Lock()

    def get(self, key: int):
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: int, entry) -> None:
        with self.lock:
            if key in self.entries or len(entry) > self.budget:
                return
            self.entries[key] = entry
            self.used += len(entry)
            while self.used > self.budget:
                self.used -= len(self.entries.popitem(last=False)[1])


def _cache() -> ImageCache:
    """This app's cache: kept on the app, not keyed by ``id(app)``, which a later app in the process (a test's) may
    reuse for another database whose image ids mean other images."""
    cache = current_app.extensions.get("survey_images")
    if cache is None:  # two threads may both make one: the loser's few entries are simply dropped
        cache = current_app.extensions["survey_images"] = ImageCache(IMAGE_CACHE_BYTES)
    return cache


@lru_cache(maxsize=16)
def _key(secret: bytes) -> bytes:
    return hashlib.sha256(b"mi-harness image marks\0" + secret).digest()


def _secret() -> bytes:
    key = current_app.secret_key
    return key if isinstance(key, bytes) else str(key).encode()


def _mark(key: bytes, label: str) -> str:
    """The base64 of a ``miXn`` chunk whose data is an HMAC of ``label``. ``hmac.new``, not the one-shot
    ``hmac.digest``: that one lets go of the GIL for a microsecond's work, handing the process to another thread
    and back seven times a page under load."""
    body = MARK_TYPE + hmac.new(key, label.encode(), hashlib.sha256).digest()[:MARK_DATA]
    return base64.b64encode(struct.pack(">I", MARK_DATA) + body + struct.pack(">I", zlib.crc32(body))).decode()


def _encoded(image_ids: list[int]) -> dict[int, Encoded]:
    """The images by id, from this app's cache or, for those it lacks, one read outside the writer lock (images
    never change)."""
    cache = _cache()
    found = {i: entry for i in image_ids if (entry := cache.get(i)) is not None}
    missing = sorted(set(image_ids) - set(found))
    if missing:
        with database.reader().connect() as connection:
            for image_id, png in connection.execute(select(Image.id, Image.png).where(Image.id.in_(missing))):
                found[image_id] = Encoded.of(png)
                cache.put(image_id, found[image_id])
    return found


def inline_images(scope: str, probe: int, aux: int | None, faces: list[int]) -> dict:
    """The page's images as data: URIs, marked for ``scope`` (``a<assignment id>``, or ``l<lineup id>`` for MTurk's
    preview): {"probe": uri, "aux": uri or None, "faces": [uri, ...]} in the lineup's order."""
    encoded = _encoded([probe, *([aux] if aux else []), *faces])
    key = _key(_secret())

    def uri(slot: str, image_id: int) -> Markup:
        image = encoded[image_id]
        mark = _mark(key, f"{scope}.{slot}") if image.head else ""
        return Markup(f"{DATA_URI}{image.head}{mark}{image.tail}")  # base64: nothing to escape

    return {"probe": uri("p", probe), "aux": uri("x", aux) if aux else None,
            "faces": [uri(str(k + 1), face) for k, face in enumerate(faces)]}


DEFAULT_PROBE_SIZE = (184, 224)
"""The probe's size on the page for studies made before the display size was recorded (AT&T at 2x)."""
FACE_SCALE = 0.75
"""Lineup faces are shown at three quarters of the probe's size, so six images fit a screen."""


def display_sizes(settings: dict) -> tuple[int, int]:
    """(width, height) in CSS pixels of the probe and of each lineup face, at the aspect of the study's images."""
    width, height = settings.get("display") or DEFAULT_PROBE_SIZE
    return (width, height), (round(width * FACE_SCALE), round(height * FACE_SCALE))
