"""Admins: password hashes (werkzeug's scrypt), a session login for the pages, a bearer token for the API."""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import db as database
from .models import Admin

MIN_PASSWORD = 8


class AdminError(ValueError):
    pass


def create_admin(db: Session, username: str, password: str) -> Admin:
    if not username or len(username) > 64:
        raise AdminError("an admin username is 1 to 64 characters")
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"the password must have at least {MIN_PASSWORD} characters")
    if db.scalar(select(Admin.id).where(Admin.username == username)) is not None:
        raise AdminError(f"an admin named {username!r} already exists")
    admin = Admin(username=username, password_hash=generate_password_hash(password))
    db.add(admin)
    return admin


def check_login(db: Session, username: str, password: str) -> Admin | None:
    admin = db.scalar(select(Admin).where(Admin.username == username))
    if admin is None:
        check_password_hash(generate_password_hash("timing"), password)  # as slow as a real check
        return None
    return admin if check_password_hash(admin.password_hash, password) else None


def new_api_token(admin: Admin) -> str:
    token = secrets.token_urlsafe(32)
    admin.api_token_hash = hashlib.sha256(token.encode()).hexdigest()
    return token


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        admin_id = session.get("admin_id")
        admin = database.session().get(Admin, admin_id) if admin_id else None
        if admin is None:
            return redirect(url_for("admin.login", next=request.path))
        g.admin = admin
        return view(*args, **kwargs)
    return wrapped


def token_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            abort(401, "send an API token: Authorization: Bearer TOKEN (POST /api/v1/token makes one)")
        digest = hashlib.sha256(header[len("Bearer "):].strip().encode()).hexdigest()
        admin = database.session().scalar(select(Admin).where(Admin.api_token_hash == digest))
        if admin is None or not hmac.compare_digest(admin.api_token_hash, digest):
            abort(401, "the API token is not valid")
        g.admin = admin
        return view(*args, **kwargs)
    return wrapped
