"""`mi-harness demo`: plugged into the main CLI by entry point."""
from __future__ import annotations

from pathlib import Path

import click

from analysis.load import AnswersError
from attack.cli import check_device, parse_labels, user_errors
from attack.models import ARCHITECTURES
from survey_app.importer import ImportProblem
from survey_app.server import ServerError

from .pipeline import PAPER_ROUNDING, DemoPlan, run_demo


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@click.command("demo")
@click.option("--work", type=click.Path(file_okay=False), default="runs/demo", show_default=True,
              help="Where the bundle, the survey database, the panel and the report go (re-running resumes).")
@click.option("--models-dir", type=click.Path(file_okay=False), default="runs/models", show_default=True,
              help="Checkpoints to reuse; missing ones are trained here.")
@click.option("--faces", "faces_dir", type=click.Path(file_okay=False), help="AT&T faces folder.")
@click.option("--models", default=",".join(ARCHITECTURES), show_default=True, help="White-box MI-Face on these.")
@click.option("--labels", default="1-40", show_default=True, help="Subjects inverted white-box.")
@click.option("--smooth-models", default="mlp", show_default=True,
              help="White-box again on these with the 'smooth' preset (image prior; attack mi-face+tv), so the "
                   "study measures what the prior changes for people; empty for none.")
@click.option("--face-models", default="mlp", show_default=True,
              help="Train these again with the 'faces' recipe and invert them white-box with the 'faces' preset "
                   "(model MODEL-faces, attack mi-face+faces): the setting whose MLP reconstructions are faces, "
                   "beside the paper's; empty for none.")
@click.option("--blackbox-models", default="softmax,dae", show_default=True)
@click.option("--blackbox-labels", default="1,9,17,25,33", show_default=True)
@click.option("--rounding", default=",".join(PAPER_ROUNDING), show_default=True,
              help="Countermeasures of the black-box sweep (none, round:R, label-only, noise:S).")
@click.option("--query-budget", type=int, default=20_000, show_default=True, help="Black-box queries per subject.")
@click.option("--deblur", default="softmax:gaussian:8", show_default=True,
              help="Deblurring attacks, MODEL:BLUR[,MODEL:BLUR]; empty for none.")
@click.option("--deblur-labels", default="1,5,9,13,17,21,25,29,33,37", show_default=True)
@click.option("--dp", default="softmax:8", show_default=True,
              help="DP-SGD models inverted white-box, MODEL:EPSILON[,MODEL:EPSILON] (delta 1e-5); empty for none.")
@click.option("--dp-labels", default="1,5,9,13,17,21,25,29,33,37", show_default=True)
@click.option("--runs", type=int, default=3, show_default=True)
@click.option("--answers-per-item", type=int, default=5, show_default=True, help="Answers per lineup in each run.")
@click.option("--gold-items", type=click.IntRange(min=0), default=20, show_default=True,
              help="Gold lineups (a real photo as the probe), two in each HIT: the skilled rule is measured on them.")
@click.option("--workers", type=int, help="Bots in the simulated panel [enough for every answer needed].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--serve", is_flag=True, help="Keep the survey server open afterwards, for real people.")
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="HOST:PORT of the server with --serve.")
@click.option("--device", default="cpu", show_default=True)
@user_errors
def demo(work, models_dir, faces_dir, models, labels, smooth_models, face_models, blackbox_models, blackbox_labels,
         rounding, query_budget, deblur, deblur_labels, dp, dp_labels, runs, answers_per_item, gold_items, workers,
         seed, serve, bind, device) -> None:
    """The whole pipeline on the AT&T faces: train, invert, build a 3-run lineup study, answer it with a
    simulated panel over HTTP, and write the report."""
    plan = DemoPlan(work=Path(work), models_dir=Path(models_dir), faces_dir=faces_dir, models=_names(models),
                    labels=parse_labels(labels), smooth_models=_names(smooth_models),
                    face_models=_names(face_models),
                    blackbox_models=_names(blackbox_models),
                    blackbox_labels=parse_labels(blackbox_labels), rounding=_names(rounding),
                    query_budget=query_budget, deblur=_names(deblur),
                    deblur_labels=parse_labels(deblur_labels), dp=_names(dp), dp_labels=parse_labels(dp_labels),
                    runs=runs, answers_per_item=answers_per_item,
                    gold_items=gold_items, workers=workers, seed=seed, device=check_device(device))
    try:
        run_demo(plan, serve=serve, bind=bind)
    except (AnswersError, ImportProblem, ServerError) as exc:
        raise click.ClickException(str(exc)) from exc


