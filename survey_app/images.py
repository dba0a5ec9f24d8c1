"""Images under random tokens: the URL, headers and bytes say nothing of whose face it is."""
from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, Response, abort, current_app, url_for
from sqlalchemy import or_, select

from . import db as database
from .models import Image, Item, Lineup, LineupFace

bp = Blueprint("images", __name__)


def _lookup(token: str) -> bytes | None:
    """The image behind a token; a read outside the writer lock (db.reader), as images never change."""
    with database.reader().connect() as connection:
        image_id = connection.scalar(select(LineupFace.image_id).where(LineupFace.token == token))
        if image_id is None:
            row = connection.execute(select(Item.image_id, Item.aux_image_id, Lineup.token).join(Lineup)
                                     .where(or_(Lineup.token == token, Lineup.aux_token == token))).first()
            if row is None:
                return None
            image_id = row.image_id if row.token == token else row.aux_image_id
        return None if image_id is None else connection.scalar(select(Image.png).where(Image.id == image_id))


_cached = lru_cache(maxsize=4096)(lambda app_id, token: _lookup(token))


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
    png = _cached(id(current_app._get_current_object()), token)
    if png is None:
        abort(404, "no such image")
    return Response(png, mimetype="image/png",
                    headers={"Cache-Control": "private, max-age=86400, immutable",
                             "Content-Disposition": "inline; filename=face.png"})
