"""`mi-harness analyze`: plugged into the main CLI by entry point."""
from __future__ import annotations

import click

from mi_harness.deep_face import DeepJudgeUnavailable

from .load import AnswersError, from_database, from_export, reconstruction_gallery, study_lineups, study_settings
from .machine import deep_lineup_answers, read_machine_scores
from .report import write_report
from .trees import read_tree_results


@click.command("analyze")
@click.argument("study")
@click.option("--database", "url", envvar="MI_SURVEY_DATABASE_URL", help="The survey's database (read-only).")
@click.option("--export", "export", type=click.Path(dir_okay=False), help="An answers.csv / .json export instead.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--machine", type=click.Path(dir_okay=False),
              help="The machine evaluator's scores of the same bundle (`mi-harness evaluate BUNDLE --csv FILE`).")
@click.option("--trees", "tree_folders", multiple=True, type=click.Path(file_okay=False),
              help="Add the results of `mi-harness trees` / `warfarin` written to this folder (repeatable).")
@click.option("--deep-judge/--no-deep-judge", default=True, show_default=True,
              help="With --database: the deep face recogniser answers the study's own lineups, beside the people "
                   "(dlib, about 0.1 s per image; lineup photos are cached).")
@click.option("--method", type=click.Choice(["wilson", "beta"]), default="wilson", show_default=True,
              help="Interval: Wilson score, or beta = Clopper-Pearson.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
def analyze(study: str, url: str | None, export: str | None, out_dir: str, machine: str | None,
            tree_folders: tuple[str, ...], deep_judge: bool, method: str, alpha: float) -> None:
    """Identification accuracy of STUDY (its name) per model, attack and countermeasure: an HTML report and CSVs."""
    if bool(url) == bool(export):
        raise click.UsageError("give the survey's --database or an --export file (one of them)")
    gallery = scores = deep = None
    try:
        if machine:
            scores = read_machine_scores(machine)
        trees = {folder: read_tree_results(folder) for folder in tree_folders}  # a wrong folder: before any work
        if export:
            frame, settings = from_export(export), {}
            if not frame.empty and not (frame["study"] == study).any():
                names = ", ".join(sorted(frame["study"].unique()))
                raise click.ClickException(f"{export} holds no answers of study {study!r} (it has: {names})")
            frame = frame[frame["study"] == study]
        else:
            frame, settings = from_database(url, study), study_settings(url, study)
            gallery = reconstruction_gallery(url, study)
            if deep_judge:
                lineups, images = study_lineups(url, study)
                deep = deep_lineup_answers(lineups, images, bool(settings.get("allow_absent", True)))
    except (AnswersError, DeepJudgeUnavailable) as exc:
        raise click.ClickException(f"{exc} (or pass --no-deep-judge)" if isinstance(exc, DeepJudgeUnavailable)
                                   else str(exc)) from exc
    if frame.empty:
        raise click.ClickException(f"study {study!r} has no answers yet: nothing to analyse")
    report = write_report(frame, out_dir, f"Lineup study {study!r}", settings, method, alpha, gallery, scores,
                          trees, deep)
    click.echo(f"report: {report}")


commands = [analyze]
