"""Images under per-assignment tokens: the URL, headers and bytes say nothing of whose face it is, and the same face
has a different URL in every worker's assignment, so colluding workers cannot pool answers by URL.

A token is ``<scope><id>.<slot>.<mac>``: scope ``a`` (an assignment) or ``l`` (a lineup, for MTurk's preview,
which has no assignment), slot ``p`` (the probe), ``x`` (its second image) or ``1``-``5`` (a face), and an HMAC of
the rest under a key derived from the app's secret key. So serving needs no token table: a forged token is refused
before any read, and a good one is one read by primary key.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from functools import lru_cache

from flask import Blueprint, Response, abort, current_app, url_for
from sqlalchemy import select

from . import db as database
from .models import Assignment, Image, Item, Lineup, LineupFace

bp = Blueprint("images", __name__)


TOKEN_CACHE = 1 << 18
"""Assignments whose lineup, and lineup slots whose image, a process remembers: a few MB each."""
IMAGE_CACHE_BYTES = 64 << 20
"""PNG bytes a process keeps: a gallery photo is shown in many lineups under many tokens, so images are cached by
id, bounded by size rather than count (a colour gallery's photos are larger than AT&T's)."""


TOKEN = re.compile(r"([al])([0-9]{1,18})\.([px1-9])\.([A-Za-z0-9_-]{22})")


@lru_cache(maxsize=16)
def _key(secret: bytes) -> bytes:
    return hashlib.sha256(b"mi-harness image tokens\0" + secret).digest()


def _mac(secret: bytes, body: str) -> str:
    digest = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _secret() -> bytes:
    key = current_app.secret_key
    return key if isinstance(key, bytes) else str(key).encode()


def image_tokens(assignment_id: int, faces: int, aux: bool, scope: str = "a") -> dict:
    """The page's image tokens for one assignment (or, scope ``l``, one lineup's preview): probe, aux (or None),
    and the faces in order."""
    secret = _secret()

    def token(slot: str) -> str:
        body = f"{scope}{assignment_id}.{slot}"
        return f"{body}.{_mac(secret, body)}"

    return {"probe": token("p"), "aux": token("x") if aux else None,
            "faces": [token(str(k + 1)) for k in range(faces)]}


class NotFound(LookupError):
    """Nothing behind an id: raised rather than returned, so the caches below never remember an absence."""


def _read(query) -> int:
    with database.reader().connect() as connection:
        found = connection.scalar(query)
    if found is None:
        raise NotFound
    return found


@lru_cache(maxsize=TOKEN_CACHE)
def _lineup_of(app_id: int, assignment_id: int) -> int:
    """An assignment's lineup, which never changes: the first of a page's images asks, the rest remember."""
    return _read(select(Assignment.lineup_id).where(Assignment.id == assignment_id))


@lru_cache(maxsize=TOKEN_CACHE)
def _slot_image(app_id: int, lineup_id: int, slot: str) -> int:
    """The image in a slot of a lineup (its probe ``p``, second image ``x``, or face ``1``-``5``), which never
    changes, and is shared by every assignment of that lineup."""
    if slot in "px":
        return _read(select(Item.aux_image_id if slot == "x" else Item.image_id)
                     .join(Lineup, Lineup.item_id == Item.id).where(Lineup.id == lineup_id))
    return _read(select(LineupFace.image_id).where(LineupFace.lineup_id == lineup_id,
                                                   LineupFace.position == int(slot) - 1))


def _image_id(app_id: int, token: str, secret: bytes) -> int | None:
    """The image behind a token, or None for a forged one (checked before any read); reads are outside the writer
    lock (db.reader), as assignments, lineups and images never change, and cached per process."""
    match = TOKEN.fullmatch(token)
    if match is None:
        return None
    scope, number, slot, mac = match.groups()
    if not hmac.compare_digest(mac, _mac(secret, f"{scope}{number}.{slot}")):
        return None
    try:
        lineup = _lineup_of(app_id, int(number)) if scope == "a" else int(number)
        return _slot_image(app_id, lineup, slot)
    except NotFound:
        return None


def _png(image_id: int) -> bytes | None:
    with database.reader().connect() as connection:
        return connection.scalar(select(Image.png).where(Image.id == image_id))


class ImageCache:
    """Least recently used PNGs by (app, image id), within a byte budget; shared by a process's threads."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used, self.entries, self.lock = budget, 0, OrderedDict(), threading.Lock()

    def get(self, key: tuple[int, int]) -> bytes | None:
        with self.lock:
            png = self.entries.get(key)
            if png is not None:
                self.entries.move_to_end(key)
            return png

    def put(self, key: tuple[int, int], png: bytes) -> None:
        with self.lock:
            if key in self.entries or len(png) > self.budget:
                return
            self.entries[key] = png
            self.used += len(png)
            while self.used > self.budget:
                self.used -= len(self.entries.popitem(last=False)[1])


_images = ImageCache(IMAGE_CACHE_BYTES)


def _lookup(app_id: int, token: str) -> bytes | None:
    image_id = _image_id(app_id, token, _secret())
    if image_id is None:
        return None
    png = _images.get((app_id, image_id))
    if png is None:
        png = _png(image_id)
        if png is not None:
            _images.put((app_id, image_id), png)
    return png


DEFAULT_PROBE_SIZE = (184, 224)
"""The probe's size on the page for studies made before the display size was recorded (AT&T at 2x)."""
FACE_SCALE = 0.75
"""Lineup faces are shown at three quarters of the probe's size, so six images fit a screen."""


def display_sizes(settings: dict) -> tuple[tuple[int, int], tuple[int, int]]:
    """(width, height) in CSS pixels of the probe and of each lineup face, at the aspect of the study's images."""
    width, height = settings.get("display") or DEFAULT_PROBE_SIZE
    return (width, height), (round(width * FACE_SCALE), round(height * FACE_SCALE))


def image_url_prefix() -> str:
    """What every image URL starts with (the page appends the token): one url_for a page instead of seven."""
    return url_for("images.image", token="-")[:-1]


@bp.get("/img/<token>")
def image(token: str):
    if len(token) > 64:
        abort(404, "no such image")
    png = _lookup(id(current_app._get_current_object()), token)
    if png is None:
        abort(404, "no such image")
    return Response(png, mimetype="image/png",
                    headers={"Cache-Control": "private, max-age=86400, immutable",
                             "Content-Disposition": "inline; filename=face.png"})
