"""`mi-harness trees`: the paper's tree-inversion table on a lifestyle survey, and its countermeasures."""
from __future__ import annotations

from pathlib import Path

import click

from .experiment import attack_tree, depth_table, run_table, trials
from .figures import attacks_figure, depth_figure
from .surveys import LOADERS, SurveyError, load_survey, with_sensitive
from .tree_model import TreeError, TreeModel

ATTACK_NAMES = ("white-box", "black-box", "black-box-confidence", "ideal", "most-common", "random")
COLUMNS = ["population", "attack", "accuracy_mean", "precision_mean", "precision_trees", "recall_mean",
           "paper_accuracy", "paper_precision", "paper_recall"]


def parse_depths(text: str) -> list[int | None]:
    depths: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part in ("top", "bottom") or part.isdigit():
            depths.append(None if part == "bottom" else 0 if part == "top" else int(part))
        else:
            raise click.BadParameter(f"{part!r}: a depth is top, bottom or a whole number", param_hint="--depths")
    return depths


@click.command("trees")
@click.option("--survey", type=click.Choice(list(LOADERS)), required=True)
@click.option("--sensitive", help="The feature to infer [the paper's: cheated, xmovie].")
@click.option("--attack", "attacks", multiple=True, type=click.Choice(list(ATTACK_NAMES)),
              help="Report only these attacks (repeatable) [all].")
@click.option("--trees", "count", type=int, default=100, show_default=True, help="Trees, each on a stratified half.")
@click.option("--countermeasure", default="none", show_default=True,
              help="none; round:R (confidences rounded, for the confidence-reading attacker); depth (the "
                   "privacy-aware CART at each of --depths).")
@click.option("--depths", default="top,1,2,3,4,bottom", show_default=True)
@click.option("--min-samples-leaf", type=int, default=1, show_default=True,
              help="Grow the trees only while every leaf keeps this many rows (1: until pure).")
@click.option("--tree", "tree_file", type=click.Path(dir_okay=False, exists=True),
              help="Attack this tree (mi-harness/tree JSON, trained elsewhere) on every respondent instead.")
@click.option("--save-tree", type=click.Path(dir_okay=False), help="Write the first tree trained, as JSON.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="Folder holding the surveys.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
def trees(survey, sensitive, attacks, count, countermeasure, depths, min_samples_leaf, tree_file, save_tree, data_dir,
          seed, out_dir) -> None:
    """Infer a sensitive survey answer from decision trees: white-box (WBWC), black-box and baselines, averaged
    over many trees, written as CSV and figures beside the paper's figures."""
    if count < 1:
        raise click.BadParameter("at least one tree", param_hint="--trees")
    if min_samples_leaf < 1:
        raise click.BadParameter("at least 1", param_hint="--min-samples-leaf")
    rounding = None
    if countermeasure.startswith("round:"):
        try:
            rounding = float(countermeasure.partition(":")[2])
        except ValueError:
            rounding = -1.0
        if not 0 < rounding < 1:
            raise click.BadParameter(f"{countermeasure!r}: round:R needs 0 < R < 1", param_hint="--countermeasure")
    elif countermeasure not in ("none", "depth"):
        raise click.BadParameter(f"{countermeasure!r}: none, round:R or depth", param_hint="--countermeasure")
    levels = parse_depths(depths) if countermeasure == "depth" else []
    try:
        data = load_survey(survey, data_dir)
        if sensitive:
            data = with_sensitive(data, sensitive)
    except SurveyError as exc:
        raise click.ClickException(str(exc)) from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    click.echo(data.note, err=True)
    (out / "note.txt").write_text(f"{data.note}; sensitive feature {data.sensitive!r} (positive: "
                                  f"{data.positive!r}), target {data.target!r}, {count} trees, countermeasure "
                                  f"{countermeasure}, leaves of at least {min_samples_leaf} rows.")
    if tree_file:
        try:
            table = attack_tree(data, TreeModel.load(tree_file), seed, rounding)
            if attacks:
                table = table[table["attack"].isin(attacks)].reset_index(drop=True)
        except (TreeError, ValueError) as exc:
            raise click.ClickException(f"{tree_file}: {exc}") from exc
        table.to_csv(out / "attacks.csv", index=False)
        click.echo(table[[c for c in COLUMNS if c in table]].round(3).to_string(index=False))
        return
    if save_tree:
        next(trials(data, 1, seed, progress=False, tree_params={"min_samples_leaf": min_samples_leaf})).tree \
            .save(save_tree)
    table = run_table(data, count, seed, rounding=rounding, min_samples_leaf=min_samples_leaf)
    if attacks:
        table = table[table["attack"].isin(attacks)].reset_index(drop=True)
    table.to_csv(out / "attacks.csv", index=False)
    attacks_figure(table, out / "figures")
    click.echo(table[COLUMNS].round(3).to_string(index=False))
    if levels:
        by_depth = depth_table(data, levels, count, seed)
        by_depth.to_csv(out / "depth.csv", index=False)
        depth_figure(by_depth, out / "figures")
        click.echo(by_depth[["depth", "model_accuracy", "training_accuracy", "training_precision",
                             "training_recall"]].round(3).to_string(index=False))
    click.echo(f"results: {out / 'attacks.csv'}", err=True)


@click.command("warfarin")
@click.option("--data", "data_path", type=click.Path(), help="The IWPC CSV (or its folder).")
@click.option("--repeats", type=int, default=10, show_default=True, help="Models, each on a random half.")
@click.option("--unknown-cyp2c9", is_flag=True, help="The attacker does not know CYP2C9 either (marginalised).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
def warfarin(data_path, repeats, unknown_cyp2c9, seed, out_dir) -> None:
    """The 2014 warfarin attack: infer VKORC1 from a linear dosing model, demographics and the dose."""
    from ..warfarin import load_patients, run

    if repeats < 1:
        raise click.BadParameter("at least one model", param_hint="--repeats")
    try:
        patients = load_patients(data_path)
    except SurveyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(patients.note, err=True)
    table = run(patients, repeats, know_cyp2c9=not unknown_cyp2c9, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "warfarin.csv", index=False)
    (out / "note.txt").write_text(f"{patients.note}; {repeats} models; the attacker "
                                  f"{'does not know' if unknown_cyp2c9 else 'knows'} CYP2C9.")
    click.echo(table.round(3).to_string(index=False))
