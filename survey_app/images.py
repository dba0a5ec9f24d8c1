"""Images under random tokens: the URL, headers and bytes say nothing of whose face it is."""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

from flask import Blueprint, Response, abort, current_app, url_for
from sqlalchemy import or_, select

from . import db as database
from .models import Image, Item, Lineup, LineupFace

bp = Blueprint("images", __name__)


TOKEN_CACHE = 1 << 18
"""Tokens whose image id a process remembers: enough for every face of a 1,000-identity study, in a few MB."""
IMAGE_CACHE_BYTES = 64 << 20
"""PNG bytes a process keeps: a gallery photo is shown in many lineups under many tokens, so images are cached by
id, bounded by size rather than count (a colour gallery's photos are larger than AT&T's)."""


def _image_id(token: str) -> int | None:
    """The image behind a token; a read outside the writer lock (db.reader), as tokens and images never change."""
    with database.reader().connect() as connection:
        image_id = connection.scalar(select(LineupFace.image_id).where(LineupFace.token == token))
        if image_id is not None:
            return image_id
        row = connection.execute(select(Item.image_id, Item.aux_image_id, Lineup.token).join(Lineup)
                                 .where(or_(Lineup.token == token, Lineup.aux_token == token))).first()
        if row is None:
            return None
        return row.image_id if row.token == token else row.aux_image_id


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


_token_ids = lru_cache(maxsize=TOKEN_CACHE)(lambda app_id, token: _image_id(token))
_images = ImageCache(IMAGE_CACHE_BYTES)


def _lookup(app_id: int, token: str) -> bytes | None:
    image_id = _token_ids(app_id, token)
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
