"""`mi-harness analyze`: plugged into the main CLI by entry point."""
from __future__ import annotations

import click

from mi_harness.deep_face import DeepJudgeUnavailable

from .clustered import BOOTSTRAP_DRAWS, clustered_accuracy
from .load import AnswersError, from_database, from_export, reconstruction_gallery, study_lineups, study_settings
from .machine import deep_lineup_answers, read_machine_scores
from .plan import SD_ITEM, SD_WORKER, Design, ceiling_note, recommend
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
              help="The naive interval shown beside the mixed model's: Wilson score, or beta = Clopper-Pearson.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--bootstrap", type=click.IntRange(0), default=BOOTSTRAP_DRAWS, show_default=True,
              help="Draws of the two-way cluster bootstrap over workers and items that checks the mixed model's "
                   "intervals (0: no check).")
def analyze(study: str, url: str | None, export: str | None, out_dir: str, machine: str | None,
            tree_folders: tuple[str, ...], deep_judge: bool, method: str, alpha: float, bootstrap: int) -> None:
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
                          trees, deep, bootstrap)
    click.echo(f"report: {report}")


def _counts(value: str) -> list[int]:
    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"give whole numbers separated by commas, not {value!r}") from None
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"give one or more numbers of at least 1, not {value!r}")
    return counts


@click.command("plan")
@click.option("--accuracy", "accuracy_a", type=float, required=True,
              help="Accuracy expected in one condition (e.g. the unprotected model), as a proportion.")
@click.option("--difference", type=float, required=True,
              help="The accuracy difference to detect (e.g. -0.15: the countermeasure lowers it by 15 points).")
@click.option("--items", "items_per_condition", type=int, default=20, show_default=True,
              help="Reconstructions (items) in each of the two conditions.")
@click.option("--answers-per-item", "candidates", default="1,2,3,5,8", show_default=True,
              help="Answers per item in each run to try, comma-separated.")
@click.option("--runs", type=int, default=3, show_default=True)
@click.option("--hit-size", type=int, default=10, show_default=True, help="Lineups per HIT.")
@click.option("--hits-per-worker", type=int, default=3, show_default=True)
@click.option("--sd-worker", type=float, default=None,
              help=f"Worker effect sd, log-odds [default: {SD_WORKER}, from face-matching studies].")
@click.option("--sd-item", type=float, default=None,
              help=f"Item effect sd, log-odds [default: {SD_ITEM}, from the demo's item correlation].")
@click.option("--pilot", type=click.Path(dir_okay=False),
              help="A pilot study's answers.csv / .json: take the worker and item sd fitted to it.")
@click.option("--power", "target", type=float, default=0.8, show_default=True, help="Power to reach.")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--simulations", type=int, default=200, show_default=True, help="Simulated studies per candidate.")
@click.option("--seed", type=int, default=0, show_default=True)
def plan(accuracy_a: float, difference: float, items_per_condition: int, candidates: str, runs: int, hit_size: int,
         hits_per_worker: int, sd_worker: float | None, sd_item: float | None, pilot: str | None, target: float,
         alpha: float, simulations: int, seed: int) -> None:
    """Power to detect an accuracy DIFFERENCE between two conditions, by simulation from the mixed model the
    analysis fits, for each number of answers per item; recommends the smallest that reaches --power."""
    answers_per_item = _counts(candidates)
    source = "the defaults, from face-matching studies and the demo (analysis/plan.py)"
    if pilot:
        try:
            frame = from_export(pilot)
        except AnswersError as exc:
            raise click.ClickException(str(exc)) from exc
        if frame[~frame["gold"]].empty:
            raise click.ClickException(f"{pilot} has no answers about reconstructions to fit")
        _, model = clustered_accuracy(frame, bootstrap=0)
        sd_worker = model["sd_worker"] if sd_worker is None else sd_worker
        sd_item = model["sd_item"] if sd_item is None else sd_item
        source = f"fitted to the pilot {pilot} ({model['answers']} answers, {model['workers']} workers, " \
                 f"{model['items']} items)"
    try:
        design = Design(accuracy_a, accuracy_a + difference, items_per_condition, answers_per_item[0], runs,
                        hit_size, hits_per_worker, SD_WORKER if sd_worker is None else sd_worker,
                        SD_ITEM if sd_item is None else sd_item)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not 0 < target < 1 or simulations < 10:
        raise click.BadParameter("--power must be between 0 and 1 and --simulations at least 10")
    click.echo(f"accuracy {design.accuracy_a:.0%} against {design.accuracy_b:.0%}, {items_per_condition} items per "
               f"condition, {runs} runs, HITs of {hit_size}, {hits_per_worker} HITs per worker; worker sd "
               f"{design.sd_worker:.2f}, item sd {design.sd_item:.2f} (log-odds), {source}; "
               f"{simulations} simulated studies each, Wald test of the mixed model at alpha {alpha}")
    click.echo("answers/item/run  answers  workers  power  (Monte Carlo se)")
    table, best = recommend(design, answers_per_item, target, simulations, alpha, seed, progress=lambda row: click.echo(
        f"{row['answers_per_item']:>16}  {row['answers']:>7}  {row['workers']:>7}  {row['power']:>5.0%}  "
        f"({row['mc_se']:.3f})"))
    if best is None:
        click.echo(f"no candidate reaches {target:.0%} power: {ceiling_note(design)}; more items per condition "
                   "help where more answers no longer do")
    else:
        click.echo(f"recommended: {best} answers per item in each run ({best * runs} over the study) reach "
                   f"{target:.0%} power")


commands = [analyze, plan]
