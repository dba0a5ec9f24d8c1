"""`mi-harness db | admin | serve | study | simulate`: the survey's commands (mi_harness.cli loads them lazily)."""
from __future__ import annotations

import csv
import functools
import json
import os
import re
import sys
from pathlib import Path

import click
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import migrate
from .auth import AdminError, create_admin
from .config import Config
from .db import make_engine
from .export import answer_rows, payment_rows, payments_csv, to_csv
from .importer import ImportProblem, create_from_source
from .models import Study
from .studies import StudyActionError, set_run_status, summary

database_option = click.option("--database", "url", envvar="MI_SURVEY_DATABASE_URL", default=Config.DATABASE_URL,
                               show_default=True, help="SQLAlchemy URL (sqlite:///FILE or postgresql://...).")


def survey_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (migrate.SchemaOutOfDate, AdminError, ImportProblem, StudyActionError) as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


def _session(url: str) -> Session:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    migrate.check_current(url)
    return Session(make_engine(url), expire_on_commit=False)


@click.group("db")
def db_group() -> None:
    """The survey database's schema (Alembic migrations)."""


@db_group.command("upgrade")
@database_option
@click.option("--revision", default="head", show_default=True)
def db_upgrade(url: str, revision: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current(url)}")


@db_group.command("downgrade")
@database_option
@click.argument("revision")
def db_downgrade(url: str, revision: str) -> None:
    migrate.downgrade(url, revision)
    click.echo(f"database at revision {migrate.current(url) or 'base (empty)'}")


@db_group.command("current")
@database_option
def db_current(url: str) -> None:
    click.echo(f"database: {migrate.current(url) or 'empty'}; code: {migrate.head()}")


@click.group("admin")
def admin_group() -> None:
    """Survey administrators."""


@admin_group.command("create")
@database_option
@click.argument("username")
@click.password_option(envvar="MI_SURVEY_ADMIN_PASSWORD")
@survey_errors
def admin_create(url: str, username: str, password: str) -> None:
    with _session(url) as db:
        create_admin(db, username, password)
        db.commit()
    click.echo(f"admin {username!r} created; log in at /admin/login")


@click.group("study")
def study_group() -> None:
    """Create, list, open and export lineup studies."""


@study_group.command("create")
@database_option
@click.option("--name", required=True)
@click.option("--bundle", type=click.Path(exists=True, file_okay=False), help="A reconstruction bundle folder.")
@click.option("--folder", type=click.Path(exists=True, file_okay=False),
              help="Reconstructions made elsewhere: images listed by --csv, or one folder per class.")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
              help="For --folder: file, subject (or identity)[, model, attack, countermeasure, blur, ...].")
@click.option("--class-map", type=click.Path(exists=True, dir_okay=False),
              help="For --folder's class folders: class -> identity (CSV class,identity or JSON).")
@click.option("--gallery", "--faces", "faces_dir", type=click.Path(exists=True),
              help="For --folder: the identities' photos (a folder of identity folders or a CSV); "
                   "default the AT&T faces.")
@click.option("--where", "filters", multiple=True, metavar="COLUMN=VALUE", help="Keep only these CSV rows.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="A study setting, e.g. runs=3.")
@click.option("--open-run", "open_runs", type=int, multiple=True, help="Open these runs at once.")
@click.option("--keep-unusable", is_flag=True, help="Keep the items screening finds no person could use "
              "(near-constant images, grain); by default they are left out and the study records how many.")
@click.option("--attributes", type=click.Path(exists=True, dir_okay=False),
              help="Subject attributes for matched fillers (--set filler_policy=matched --set matched_on=sex): a CSV "
                   "subject,COLUMN...; the AT&T faces' is ../shared/data/att_faces_attributes.csv.")
@survey_errors
def study_create(url, name, bundle, folder, csv_path, class_map, faces_dir, filters, assignments, open_runs,
                 keep_unusable, attributes) -> None:
    settings = _pairs(assignments, "--set")
    with _session(url) as db:
        study = create_from_source(db, name, settings, bundle=bundle, folder=folder, csv=csv_path,
                                   faces_dir=faces_dir, where=_pairs(filters, "--where"), keep_unusable=keep_unusable,
                                   class_map=class_map, attributes=attributes)
        for number in open_runs:
            set_run_status(db, study, number, "open")
        db.commit()
        info = summary(db, study)
    screening = study.settings["screening"]
    for row in screening["flagged"]:
        click.echo(f"{'kept' if keep_unusable else 'left out'} {row['id']}: {row['detail']}", err=True)
    click.echo(json.dumps({**{k: info[k] for k in ("id", "name", "link", "items", "gold_items")},
                           "unusable": screening["unusable"], "left_out": screening["left_out"]}))


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key.strip()] = rest.strip()
    return pairs


@study_group.command("list")
@database_option
@survey_errors
def study_list(url: str) -> None:
    with _session(url) as db:
        for study in db.scalars(select(Study).order_by(Study.id)):
            info = summary(db, study)
            runs = ", ".join(f"run {r['number']} {r['status']} {r['answers']}/{r['needed']}" for r in info["runs"])
            click.echo(f"{study.id}\t{study.name}\t{info['link']}\t{runs}")


@study_group.command("run")
@database_option
@click.argument("study_id", type=int)
@click.argument("number", type=int)
@click.argument("action", type=click.Choice(["open", "close"]))
@survey_errors
def study_run(url: str, study_id: int, number: int, action: str) -> None:
    with _session(url) as db:
        study = db.get(Study, study_id)
        if study is None:
            raise click.ClickException(f"no study {study_id}")
        run = set_run_status(db, study, number, "open" if action == "open" else "closed")
        db.commit()
        click.echo(f"run {run.number} of {study.name!r} is {run.status}")


@study_group.command("export")
@database_option
@click.argument("study_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="File to write (default: standard output).")
@click.option("--payments", is_flag=True, help="Each worker's HITs, platform ids, codes, answers, gold and skilled "
                                               "verdicts and a suggested approve/reject, instead of the answers.")
@survey_errors
def study_export(url: str, study_id: int, fmt: str, out: str | None, payments: bool) -> None:
    with _session(url) as db:
        study = db.get(Study, study_id)
        if study is None:
            raise click.ClickException(f"no study {study_id}")
        rows = payment_rows(db, study) if payments else answer_rows(db, study)
    if payments:
        text = payments_csv(rows) if fmt == "csv" else json.dumps(rows, indent=1)
    else:
        text = to_csv(rows) if fmt == "csv" else json.dumps(rows, indent=1)
    if out:
        Path(out).write_text(text)
        click.echo(f"{len(rows)} {'workers' if payments else 'answers'} written to {out}", err=True)
    else:
        sys.stdout.write(text)


@click.command("serve")
@database_option
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", type=int, default=(os.cpu_count() or 1) + 1, show_default="cores + 1",
              help="Worker processes (gthread: each serves --threads requests at once).")
@click.option("--threads", type=int, default=4, show_default=True, help="Threads per worker process.")
@survey_errors
def serve(url: str, bind: str, workers: int, threads: int) -> None:
    """Run the survey under gunicorn (a production WSGI server, not Flask's development server)."""
    migrate.check_current(url)  # refuse here, once, with a clear message, rather than in every worker
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("accesslog", None)
            self.cfg.set("graceful_timeout", 10)

        def load(self):
            from . import create_app

            return create_app({"DATABASE_URL": url})

    click.echo(f"serving the survey at http://{bind}/ (admin: /admin/) with {workers} workers", err=True)
    Server().run()


@click.command("simulate")
@database_option
@click.argument("study")
@click.option("--workers", "n_workers", type=int, default=30, show_default=True, help="Bots in the panel.")
@click.option("--hits-per-worker", type=int, default=3, show_default=True, help="Most HITs a bot takes.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Bots working at the same time.")
@click.option("--url", "base_url", help="A running survey server (default: serve --database on a free local port "
              "while the panel works).")
@click.option("--seed", type=int, default=0, show_default=True, help="Kinds, efficiencies and choices of the bots.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False),
              help="Write the panel (worker, kind, efficiency, absent criterion, answers).")
@survey_errors
def simulate(url, study, n_workers, hits_per_worker, concurrency, base_url, seed, csv_out) -> None:
    """Send a panel of worker bots through STUDY (its name, id or link) over HTTP, as people would take it."""
    from .server import ServerProcess
    from .simulate import PANEL_COLUMNS, panel_rows, personas, run_panel

    if n_workers < 1 or hits_per_worker < 1 or concurrency < 1:
        raise click.BadParameter("--workers, --hits-per-worker and --concurrency must be at least 1")
    slug, expected = _open_study(url, study)
    panel = personas(n_workers, seed)
    if base_url:
        results = run_panel(base_url, slug, panel, hits_per_worker, concurrency, expected)
    else:
        with ServerProcess(url, workers=2, threads=max(4, concurrency)) as server:
            results = run_panel(server.base, slug, panel, hits_per_worker, concurrency, expected)
    rows = panel_rows(results)
    if csv_out:
        with open(csv_out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=PANEL_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    for profile in sorted({r["profile"] for r in rows}):
        mine = [r for r in rows if r["profile"] == profile]
        click.echo(f"{profile}: {len(mine)} workers, {sum(r['answers'] for r in mine)} answers, "
                   f"{sum(r['hits_completed'] for r in mine)} HITs completed")
    errors = [r for r in rows if r["error"]]
    for row in errors[:5]:
        click.echo(f"{row['worker']} stopped: {row['error']}", err=True)
    if errors:
        raise click.ClickException(f"{len(errors)} of {len(rows)} bots stopped on an error")


def _open_study(url: str, study: str) -> tuple[str, int | None]:
    """The study's slug (from a name, an id or a /s/SLUG/ link) and the answers its open runs still need."""
    match = re.search(r"/s/([A-Za-z0-9_-]+)/?$", study)
    with _session(url) as db:
        found = db.scalar(select(Study).where(or_(Study.name == study, Study.slug == (match[1] if match else study),
                                                  Study.id == (int(study) if study.isdigit() else -1))))
        if found is None:
            names = ", ".join(db.scalars(select(Study.name).order_by(Study.id))) or "none"
            raise click.ClickException(f"no study {study!r} in {url} (it has: {names})")
        runs = [r for r in summary(db, found)["runs"] if r["status"] == "open"]
    if not runs:
        raise click.ClickException(f"no run of study {found.name!r} is open, so there is no work: open one with "
                                   f"`mi-harness study run {found.id} 1 open`")
    return found.slug, sum(max(0, r["needed"] - r["answers"]) for r in runs)


