"""Settings, read from the environment in one place (``MI_SURVEY_*``)."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path(os.environ.get("MI_SURVEY_HOME", Path.home() / ".local" / "share" / "mi-harness" / "survey"))


class Config:
    DATABASE_URL = os.environ.get("MI_SURVEY_DATABASE_URL") or f"sqlite:///{DEFAULT_HOME / 'survey.db'}"
    SECRET_KEY = os.environ.get("MI_SURVEY_SECRET_KEY")  # else one kept in the database (see db.secret_key)
    MAX_CONTENT_LENGTH = 256 * 1024  # workers' and admins' forms; the bundle upload raises its own limit
    MAX_UPLOAD_BYTES = int(os.environ.get("MI_SURVEY_MAX_UPLOAD_MB", "200")) * 1024 * 1024
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("MI_SURVEY_SECURE_COOKIES", "") == "1"
    WTF_CSRF_TIME_LIMIT = None  # a HIT can outlast an hour; the token is bound to the signed session anyway
    WTF_CSRF_SSL_STRICT = False  # behind a TLS proxy the Referer check would need the proxy's headers
    FACES_DIR = os.environ.get("MI_FACES_DIR")
    MTURK_SUBMIT_TO = tuple(u for u in os.environ.get("MI_SURVEY_MTURK_SUBMIT_TO", "").split(",") if u)  # beside
    # MTurk's own two (worker.py): where else a turkSubmitTo may point, e.g. a test's fake platform
    PROXY_HOPS = int(os.environ.get("MI_SURVEY_PROXY_HOPS", "0"))  # reverse proxies in front (nginx: 1), trusted for
    # the client's scheme and address (X-Forwarded-Proto, -For), so links the server writes say https behind TLS
