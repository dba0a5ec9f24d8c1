"""The demo's steps, each resumable: a step that finished is recorded in WORK/state.json and skipped next
time; every file a step writes (checkpoint, bundle, CSV, report) is written whole or not at all, and the
survey's answers are committed one by one, so an interrupted demo re-run picks up where it stopped."""
from __future__ import annotations

import csv
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.load import from_database, reconstruction_gallery, study_lineups, study_settings
from analysis.machine import deep_lineup_answers, read_machine_scores
from analysis.report import write_report
from attack.checkpoints import load_checkpoint, save_checkpoint
from attack.faces import Faces, Split, load_faces
from attack.models import ARCHITECTURES
from attack.private_training import (
    PrivacyConfig,
    checkpoint_name,
    dp_train_config,
    private_checkpoint_metadata,
    train_private_model,
)
from attack.reconstruct import AttackRequest, run_attack, save_to_bundle
from attack.training import RECIPES, TrainConfig, checkpoint_metadata, train_model
from mi_harness.bundle import read_bundle
from mi_harness.evaluate import DEFAULT_GROUPING, Recogniser, References, evaluate_bundle, groups_as_rows
from mi_harness.galleries import default_gallery_dir
from survey_app import migrate
from survey_app.db import make_engine
from survey_app.importer import create_from_source
from survey_app.models import Study
from survey_app.server import ServerProcess
from survey_app.simulate import PANEL_COLUMNS, panel_rows, personas, run_panel
from survey_app.studies import set_run_status, summary

PAPER_ROUNDING = ("none", "round:0.001", "round:0.005", "round:0.01", "round:0.05")
"""The rounding levels of the paper's countermeasure experiment, with the unprotected model first."""


class DemoError(click.ClickException):
    pass


@dataclass
class DemoPlan:
    """What the demo runs. The defaults are the full demo; the tests shrink it."""
    work: Path = Path("runs/demo")
    models_dir: Path = Path("runs/models")
    faces_dir: str | None = None
    models: tuple[str, ...] = ARCHITECTURES
    labels: list[int] = field(default_factory=lambda: list(range(40)))
    smooth_models: tuple[str, ...] = ("mlp",)  # white-box again with the "smooth" preset (attack mi-face+tv)
    # trained with the "faces" recipe (MODEL-faces.pt) and inverted white-box with the "faces" preset: the setting
    # whose MLP reconstructions are faces, beside the paper's (BENCHMARKS.md, "Closing the gap")
    face_models: tuple[str, ...] = ("mlp",)
    blackbox_models: tuple[str, ...] = ("softmax", "dae")
    blackbox_labels: list[int] = field(default_factory=lambda: [0, 8, 16, 24, 32])
    rounding: tuple[str, ...] = PAPER_ROUNDING
    query_budget: int = 20_000
    deblur: tuple[str, ...] = ("softmax:gaussian:8",)  # MODEL:BLUR
    deblur_labels: list[int] = field(default_factory=lambda: list(range(0, 40, 4)))
    dp: tuple[str, ...] = ("softmax:8",)  # MODEL:EPSILON: DP-SGD models (delta 1e-5), inverted white-box
    dp_labels: list[int] = field(default_factory=lambda: list(range(0, 40, 4)))
    study: str = "demo"
    runs: int = 3
    answers_per_item: int = 5
    gold_items: int = 20  # real photos as probes: the skilled rule is then measured on them, not on the study
    gold_per_hit: int = 2
    filler_policy: str = "matched"  # fillers of the target's sex: with random ones a woman stands out among men
    matched_on: str = "sex"
    attributes: str | None = None  # the subjects' attributes CSV [att_faces_attributes.csv beside the faces folder]
    control_items: int = 10  # mock-witness lineups (another subject's reconstruction), at most a quarter of the items
    confidence_scale: int = 5  # confidence asked after each choice, 1 (guessing) to 5 (certain)
    hit_size: int = 10
    workers: int | None = None  # None: enough bots for every answer the study needs
    hits_per_worker: int = 3
    concurrency: int = 8
    seed: int = 0
    device: str = "cpu"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{(self.work / 'survey.db').resolve()}"

    @property
    def bundle(self) -> Path:
        return self.work / "bundle"


class State:
    """Which steps have finished, and how long each took, in WORK/state.json (replaced atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {"done": {}, "panel_rounds": 0}

    def done(self, key: str) -> bool:
        return key in self.data["done"]

    def mark(self, key: str, seconds: float, **extra) -> None:
        self.data["done"][key] = {"seconds": round(seconds, 2), **extra}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def say(message: str) -> None:
    click.secho(message, fg="cyan", err=True)


def timed(state: State, key: str, title: str, action: Callable[[], dict | None]) -> None:
    if state.done(key):
        say(f"- {title}: done before, skipped")
        return
    say(f"- {title}")
    start = time.perf_counter()
    extra = action() or {}
    state.mark(key, time.perf_counter() - start, **extra)


def attack_requests(plan: DemoPlan) -> list[tuple[str, str, AttackRequest]]:
    """(state key, title, request) for every attack of the plan, white-box first."""
    out = []
    for model in plan.models:
        out.append((f"attack:{model}:whitebox:{plan.labels}", f"white-box MI-Face on {model}, "
                    f"{len(plan.labels)} subjects", AttackRequest(plan.models_dir / f"{model}.pt", plan.labels,
                                                                  device=plan.device, seed=plan.seed)))
    for model in plan.smooth_models:
        out.append((f"attack:{model}:whitebox-smooth:{plan.labels}", f"white-box MI-Face on {model} with the "
                    f"smooth preset (image prior), {len(plan.labels)} subjects",
                    AttackRequest(plan.models_dir / f"{model}.pt", plan.labels, preset="smooth", device=plan.device,
                                  seed=plan.seed)))
    for model in plan.face_models:
        path = plan.models_dir / checkpoint_name(model, None, "faces")
        out.append((f"attack:{path.stem}:whitebox-faces:{plan.labels}", f"white-box MI-Face on {model} trained and "
                    f"attacked with the faces setting, {len(plan.labels)} subjects",
                    AttackRequest(path, plan.labels, preset="faces", device=plan.device, seed=plan.seed)))
    for model in plan.blackbox_models:
        for level in plan.rounding:
            out.append((f"attack:{model}:blackbox:{level}:{plan.blackbox_labels}:{plan.query_budget}",
                        f"black-box MI-Face on {model}, confidences {level}, {len(plan.blackbox_labels)} subjects",
                        AttackRequest(plan.models_dir / f"{model}.pt", plan.blackbox_labels, "blackbox", level,
                                      mi_face={"query_budget": plan.query_budget}, device=plan.device,
                                      seed=plan.seed)))
    for model, epsilon in dp_models(plan):
        path = plan.models_dir / checkpoint_name(model, PrivacyConfig(epsilon))
        out.append((f"attack:{path.stem}:whitebox:{plan.dp_labels}", f"white-box MI-Face on {model} trained with "
                    f"DP-SGD at epsilon {epsilon:g}, {len(plan.dp_labels)} subjects",
                    AttackRequest(path, plan.dp_labels, device=plan.device, seed=plan.seed)))
    for spec in plan.deblur:
        model, _, blur = spec.partition(":")
        out.append((f"attack:{model}:deblur:{blur}:{plan.deblur_labels}",
                    f"deblurring {blur} with {model}, {len(plan.deblur_labels)} subjects",
                    AttackRequest(plan.models_dir / f"{model}.pt", plan.deblur_labels, blur=blur, device=plan.device,
                                  seed=plan.seed)))
    return out


def dp_models(plan: DemoPlan) -> list[tuple[str, float]]:
    """(architecture, epsilon) of each MODEL:EPSILON in the plan's DP condition."""
    out = []
    for spec in plan.dp:
        model, _, epsilon = spec.partition(":")
        try:
            out.append((model, float(epsilon)))
        except ValueError:
            raise DemoError(f"a DP model is MODEL:EPSILON, e.g. softmax:8, not {spec!r}") from None
    return out


def check_plan(plan: DemoPlan) -> None:
    used = set(plan.models) | set(plan.smooth_models) | set(plan.blackbox_models) | set(plan.face_models) | \
        {s.partition(":")[0] for s in plan.deblur} | {model for model, _ in dp_models(plan)}
    unknown = sorted(used - set(ARCHITECTURES))
    if unknown:
        raise DemoError(f"unknown model {', '.join(unknown)} (models: {', '.join(ARCHITECTURES)})")
    unfit = sorted(set(plan.face_models) - set(RECIPES["faces"]))
    if unfit:
        raise DemoError(f"the faces setting is for {', '.join(RECIPES['faces'])} only, not {', '.join(unfit)}")
    if any(not s.partition(":")[2] for s in plan.deblur):
        raise DemoError("a deblurring item is MODEL:BLUR, e.g. softmax:gaussian:8")
    for _, epsilon in dp_models(plan):
        try:
            PrivacyConfig(epsilon)
        except ValueError as exc:
            raise DemoError(f"DP condition: {exc}") from None
    if not (plan.models or plan.smooth_models or plan.face_models or plan.blackbox_models or plan.deblur or plan.dp):
        raise DemoError("the plan has no attack to run")


def train_missing(plan: DemoPlan, faces: Faces, state: State) -> None:
    """Train each model the plan uses that has no checkpoint yet (an existing one is reused, as `train` does):
    the plain ones, the faces-recipe ones, then the DP-SGD ones, each under its checkpoint name."""
    used = dict.fromkeys([*plan.models, *plan.smooth_models, *plan.blackbox_models,
                          *(s.partition(":")[0] for s in plan.deblur)])
    wanted = [(arch, None, "paper") for arch in used] + [(arch, None, "faces") for arch in plan.face_models] + \
        [(arch, PrivacyConfig(eps), "paper") for arch, eps in dp_models(plan)]
    for arch, privacy, recipe in wanted:
        path = plan.models_dir / checkpoint_name(arch, privacy, recipe)
        what = f"{arch} with DP-SGD at epsilon {privacy.epsilon:g}" if privacy else \
            arch if recipe == "paper" else f"{arch} with the {recipe} recipe"
        if path.exists():
            differences = privacy.differences(load_checkpoint(path)[1].get("privacy") or {}) if privacy else []
            if differences:  # its items would carry this dp:eps label for a model trained otherwise
                raise DemoError(f"{path} was trained with other DP settings ({'; '.join(differences)}): remove it "
                                "or pass another --models-dir")
            say(f"- {what}: reusing {path}")
            continue
        say(f"- training {what} (no checkpoint in {plan.models_dir})")
        start = time.perf_counter()
        split = Split.make(0)
        extra = {}
        if privacy is None:
            cfg = TrainConfig.for_architecture(arch, recipe, seed=plan.seed)
            model, result = train_model(arch, faces, split, cfg, plan.device)
            meta = checkpoint_metadata(model, split, cfg, result, faces)
        else:
            cfg = dp_train_config(arch, seed=plan.seed)
            model, result, report = train_private_model(arch, faces, split, cfg, privacy, plan.device)
            meta = private_checkpoint_metadata(model, split, cfg, result, faces, report)
            extra = {"epsilon_spent": report["spent_epsilon"]}
        save_checkpoint(path, model, meta)
        state.mark(f"train:{path.stem}", time.perf_counter() - start, validation_accuracy=result.validation_accuracy,
                   **extra)


def forget_missing(plan: DemoPlan, state: State) -> None:
    """Steps whose output was deleted since they ran are run again, with every step that builds on them."""
    done = state.data["done"]
    if not (plan.bundle / "manifest.json").is_file():
        for key in [k for k in done if k.startswith("attack:") or k == "evaluate"]:
            del done[key]
    if not (plan.work / "machine.csv").is_file():
        done.pop("evaluate", None)
    if not (plan.work / "survey.db").is_file() or any(k.startswith("attack:") and k not in done
                                                       for k, _, _ in attack_requests(plan)):
        for key in ("study", "panel", "report"):
            done.pop(key, None)
        state.data["panel_rounds"] = 0
        state.data.pop("panel_round_size", None)
    state.save()


def run_attacks(plan: DemoPlan, faces: Faces, state: State) -> None:
    for key, title, request in attack_requests(plan):
        def attack(request=request):
            output = run_attack(request, faces)
            save_to_bundle(output, plan.bundle)
            return {"items": len(output.items)}

        timed(state, key, title, attack)


def evaluate(plan: DemoPlan, faces: Faces, state: State) -> Path:
    path = plan.work / "machine.csv"

    def score():
        bundle = read_bundle(plan.bundle)
        rows = groups_as_rows(evaluate_bundle(bundle, Recogniser(References.from_bundle(bundle)), DEFAULT_GROUPING))
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)

    timed(state, "evaluate", "the machine evaluator on every reconstruction", score)
    return path


def make_study(plan: DemoPlan, state: State) -> None:
    url = plan.database_url

    def create():
        migrate.upgrade(url)
        engine = make_engine(url)
        with Session(engine, expire_on_commit=False) as db:
            study = db.scalar(select(Study).where(Study.name == plan.study))
            # a study made before screening holds every bundle item; one made since records how many it screened
            screened = (study.settings.get("screening") or {}).get("items") if study is not None else None
            if study is not None and (screened if screened is not None else summary(db, study)["items"]) != \
                    len(read_bundle(plan.bundle).items):
                raise DemoError(f"{plan.work / 'survey.db'} already has a study {plan.study!r} of another bundle "
                                "(the plan changed since it was made): remove the folder or pass another --work")
            if study is None:  # else the study was stored just before an interruption: adopt it
                items = len(read_bundle(plan.bundle).items)
                study = create_from_source(db, plan.study, {"runs": plan.runs, "hit_size": plan.hit_size,
                                                            "answers_per_item": plan.answers_per_item,
                                                            "gold_items": plan.gold_items,
                                                            "gold_per_hit": plan.gold_per_hit,
                                                            "filler_policy": plan.filler_policy,
                                                            "matched_on": plan.matched_on,
                                                            "control_items": min(plan.control_items, items // 4),
                                                            "confidence_scale": plan.confidence_scale,
                                                            "seed": plan.seed}, bundle=str(plan.bundle),
                                           attributes=str(attributes_csv(plan)))
            for number in range(1, plan.runs + 1):
                set_run_status(db, study, number, "open")
            db.commit()
            items = summary(db, study)["items"]
        engine.dispose()
        return {"items": items}

    timed(state, "study", f"a {plan.runs}-run lineup study of the bundle in {plan.work / 'survey.db'}", create)


def attributes_csv(plan: DemoPlan) -> Path:
    """The subjects' attributes for matched fillers: the plan's, or the AT&T faces' ``att_faces_attributes.csv``
    beside the faces folder (as ../shared/data holds them)."""
    path = Path(plan.attributes) if plan.attributes else default_gallery_dir(plan.faces_dir).parent / \
        "att_faces_attributes.csv"
    if not path.is_file():
        raise DemoError(f"matched fillers need the subjects' attributes and there is no CSV at {path}: pass "
                        "attributes to the plan")
    return path


def study_progress(plan: DemoPlan) -> tuple[str, int, int]:
    """The study's slug, its number of items and the answers its runs still need."""
    engine = make_engine(plan.database_url)
    try:
        with Session(engine) as db:
            study = db.scalar(select(Study).where(Study.name == plan.study))
            info = summary(db, study)
            return study.slug, info["items"], sum(max(0, r["needed"] - r["answers"]) for r in info["runs"])
    finally:
        engine.dispose()


def run_simulated_panel(plan: DemoPlan, state: State, server: ServerProcess) -> None:
    """Rounds of bots until every run has its answers. An interrupted round is re-run with the same bots, who
    log in again with the resume codes they kept (in the demo's state) and finish the HITs they held (their
    lineups would otherwise wait for the HITs to expire)."""
    panel_csv = plan.work / "panel.csv"
    slug, items, remaining = study_progress(plan)
    if remaining == 0:
        say("- simulated panel: every run has its answers, skipped")
        return
    start = time.perf_counter()
    while remaining:
        round_ = state.data["panel_rounds"]
        if round_ >= 5:
            raise DemoError(f"five rounds of bots left {remaining} answers missing: see {server.log_path}")
        count = state.data.get("panel_round_size")  # set: this round was interrupted, and its bots come back
        if count is None:
            # a bot answers each item at most once in its run, so a small study needs more bots
            per_bot = min(plan.hits_per_worker * plan.hit_size, items)
            count = plan.workers or math.ceil(1.1 * remaining / per_bot) + 1
            state.data["panel_round_size"] = count
            state.save()
        say(f"- simulated panel, round {round_ + 1}: {count} bots for {remaining} answers")
        panel = personas(count, plan.seed * 1000 + round_, prefix=f"bot{round_ + 1}")
        codes = state.data.setdefault("resume_codes", {})
        saving = threading.Lock()

        def keep(worker: str, code: str) -> None:  # at once, so an interruption cannot lose it
            with saving:
                codes[worker] = code
                state.save()

        results = run_panel(server.base, slug, panel, plan.hits_per_worker, plan.concurrency, remaining,
                            resume_codes=dict(codes), on_resume_code=keep)
        errors = [r for r in results if r.error]
        if errors:
            raise DemoError(f"{len(errors)} bots stopped on an error, e.g. {errors[0].error}")
        rows = panel_rows(results)
        new = not panel_csv.exists() or round_ == 0
        with open(panel_csv, "w" if new else "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=PANEL_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
        state.data["panel_rounds"] = round_ + 1
        state.data.pop("panel_round_size")
        state.save()
        before, (_, _, remaining) = remaining, study_progress(plan)
        if remaining == before:
            raise DemoError(f"a round of bots answered nothing; {remaining} answers still missing")
    state.mark("panel", time.perf_counter() - start)


def report(plan: DemoPlan, machine_csv: Path, state: State) -> tuple[Path, pd.DataFrame]:
    url = plan.database_url
    start = time.perf_counter()
    frame = from_database(url, plan.study)
    settings = study_settings(url, plan.study)
    lineups, images = study_lineups(url, plan.study)
    # the answers are bots': the title says so wherever the report is read
    title = f"mi-harness demo: study {plan.study!r}, answered by the simulated panel (bots, not people)"
    out = write_report(frame, plan.work / "report", title, settings,
                       gallery=reconstruction_gallery(url, plan.study), machine=read_machine_scores(machine_csv),
                       deep_lineups=deep_lineup_answers(lineups, images, bool(settings.get("allow_absent", True))))
    state.mark("report", time.perf_counter() - start, answers=len(frame))
    return out, frame


def skilled_by_profile(plan: DemoPlan, frame: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """profile -> (skilled bots, bots): does the skilled filter find the attentive ones?"""
    panel_csv = plan.work / "panel.csv"
    if not panel_csv.exists():
        return {}
    skilled = frame.groupby("worker")["skilled"].first().to_dict()
    out: dict[str, list[int]] = {}
    with open(panel_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["worker"] in skilled:
                counts = out.setdefault(row["profile"], [0, 0])
                counts[0] += bool(skilled[row["worker"]])
                counts[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def run_demo(plan: DemoPlan, serve: bool = False, bind: str = "127.0.0.1:8000") -> Path:
    check_plan(plan)
    plan.work.mkdir(parents=True, exist_ok=True)
    plan.models_dir.mkdir(parents=True, exist_ok=True)
    state = State(plan.work / "state.json")
    forget_missing(plan, state)
    started = time.perf_counter()
    (plan.work / "plan.json").write_text(json.dumps(asdict(plan), indent=1, default=str))
    faces = load_faces(plan.faces_dir)
    train_missing(plan, faces, state)
    run_attacks(plan, faces, state)
    machine_csv = evaluate(plan, faces, state)
    make_study(plan, state)
    host, _, port = bind.rpartition(":")
    with ServerProcess(plan.database_url, port=int(port) if serve else 0, host=host if serve else "127.0.0.1",
                       workers=2, threads=max(4, plan.concurrency), log=plan.work / "server.log") as server:
        run_simulated_panel(plan, state, server)
        say("- the report")
        path, frame = report(plan, machine_csv, state)
        state.data["total_seconds_last_run"] = round(time.perf_counter() - started, 1)
        state.save()
        click.echo(f"report: {path.resolve()}")
        for profile, (skilled, total) in sorted(skilled_by_profile(plan, frame).items()):
            click.echo(f"  skilled filter: {skilled} of {total} {profile} bots")
        if serve:
            slug, _, _ = study_progress(plan)
            click.echo(f"the study is open at {server.base}/s/{slug}/ (database {plan.database_url}); create an "
                       f"admin with `mi-harness admin create --database {plan.database_url} NAME`, then "
                       f"{server.base}/admin/. Ctrl-C stops the server.")
            try:
                server.wait()
            except KeyboardInterrupt:
                pass
    return path
