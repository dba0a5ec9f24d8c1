"""`mi-harness attriguard`: AttriGuard against attribute inference on a lifestyle survey, beside randomised
response at the same expected number of changed answers; a CSV table, a figure and a note."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .attriguard import DEFAULT_BUDGET, POLICIES  # noqa: E402
from .attriguard_experiment import DEFENDER, TARGETS, run  # noqa: E402
from .public_answers import load_public_answers  # noqa: E402
from .surveys import LOADERS, SurveyError  # noqa: E402

SHOWN = ["defence", "beta", "attacker", "accuracy", "balanced_accuracy", "balanced_accuracy_se", "changed_answers",
         "epsilon"]


def parse_betas(text: str) -> list[float]:
    try:
        betas = sorted({0.0, *(float(part) for part in text.split(","))})  # 0: no defence, the reference
    except ValueError:
        raise click.BadParameter(f"{text!r}: budgets are numbers separated by commas", param_hint="--betas") from None
    if betas[0] < 0:
        raise click.BadParameter(f"{text!r}: budgets are at least 0", param_hint="--betas")
    return betas


def figure(table: pd.DataFrame, path: Path) -> None:
    """Accuracy and balanced accuracy against beta: one colour per attacker, AttriGuard solid, randomised response
    dashed, and what needs no model (the base rate; 0.5 balanced for two values) dotted."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    colours = dict(zip(dict.fromkeys(table["attacker"]), plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for axis, metric in zip(axes, ("accuracy", "balanced_accuracy")):
        for (defence, attacker), rows in table.groupby(["defence", "attacker"], sort=False):
            axis.plot(rows["beta"], rows[metric], color=colours[attacker], marker="o" if defence == "attriguard" else
                      "x", linestyle="-" if defence == "attriguard" else "--", label=f"{attacker}, {defence}")
        chance = table["base_rate"].iloc[0] if metric == "accuracy" else 1 / table["values"].iloc[0]
        axis.axhline(chance, color="grey", linestyle=":", label="base rate" if metric == "accuracy" else "chance")
        axis.set_xlabel("utility budget β (expected answers changed per person)")
        axis.set_ylabel(metric.replace("_", " ") + " at inferring " + repr(table["sensitive"].iloc[0]))
    handles = {label: handle for axis in axes for handle, label in zip(*axis.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(f"{table['survey'].iloc[0]}: AttriGuard ({table['policy'].iloc[0]}, target "
                 f"{table['target'].iloc[0]}) vs randomised response, {int(table['people'].iloc[0])} protected people",
                 fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(temporary, dpi=150, bbox_inches="tight")
    plt.close(fig)
    os.replace(temporary, path)


@click.command("attriguard")
@click.option("--survey", type=click.Choice(list(LOADERS)), required=True)
@click.option("--sensitive", help="The answer to protect [the paper's: cheated, xmovie].")
@click.option("--betas", default="0,0.25,0.5,1,2,3", show_default=True,
              help="Utility budgets: expected number of answers changed per person (0, no defence, is always run).")
@click.option("--policy", type=click.Choice(POLICIES), default="modify-add", show_default=True,
              help="modify: change given answers; add: answer skipped questions; modify-add: either.")
@click.option("--target", type=click.Choice(TARGETS), default="prior", show_default=True,
              help="The distribution the defender's classifier's output should follow.")
@click.option("--draws", type=int, default=10, show_default=True, help="Randomised-response draws per budget.")
@click.option("--search-budget", type=int, default=DEFAULT_BUDGET, show_default=True,
              help="Phase I candidates per person and value before the value counts as unreachable (only a "
                   "sensitive answer with more than two values can need it).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="Folder holding the surveys.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
def attriguard(survey, sensitive, betas, policy, target, draws, search_budget, data_dir, seed, out_dir) -> None:
    """Protect a sensitive survey answer with AttriGuard (Jia and Gong 2018): the fewest answers changed that make
    the defender's classifier say each value (Phase I, exact), drawn by the KL-optimal mechanism under the budget
    (Phase II); measured against attackers' classifiers and randomised response at matched utility loss."""
    budgets = parse_betas(betas)
    if draws < 1:
        raise click.BadParameter("at least one draw", param_hint="--draws")
    if search_budget < 1:
        raise click.BadParameter("at least 1", param_hint="--search-budget")
    try:
        answers = load_public_answers(survey, data_dir, sensitive)
    except SurveyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(answers.note, err=True)
    started = time.perf_counter()
    try:
        table, facts = run(answers, budgets, policy, target, draws, seed, search_budget)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    seconds = time.perf_counter() - started
    table["values"] = len(answers.sensitive_values)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    temporary = out / ".attriguard.csv.tmp"
    table.to_csv(temporary, index=False)
    os.replace(temporary, out / "attriguard.csv")
    figure(table, out / "figures" / "attriguard.png")
    undefended = table[table["beta"] == 0]["balanced_accuracy"].max()
    unreachable = (f"{facts['unreachable']} of {facts['pairs']} (person, value) pairs got no change that makes the "
                   f"defender's classifier say the value (none exists under the policy, or the search budget of "
                   f"{search_budget} candidates ran out first; they get no probability)" if facts["unreachable"]
                   else "every value was reachable for every protected person")
    (out / ".note.txt.tmp").write_text(
        f"{answers.note}. AttriGuard (Jia and Gong, USENIX Security 2018) protecting {answers.sensitive!r} "
        f"({', '.join(answers.sensitive_values)}): the defender's classifier is a logistic regression on one-hot "
        f"answers trained on {facts['defender_rows']} people who disclose the answer; the attacker's logistic "
        f"regression, decision tree and random forest are trained on {facts['attacker_rows']} others (all on "
        f"unperturbed answers, classes weighted so that each value counts equally); the other half are protected. "
        f"Phase I is an exact minimum-change search (policy {policy}); {unreachable}; a value other than the "
        f"classifier's own output took {facts['mean_cost']:.2f} changed answers on average. Phase II targets the "
        f"{target} distribution {facts['target_distribution']}. AttriGuard's accuracy is the exact expectation over "
        f"its draw; randomised response (k-ary, on every answered question, epsilon per person so that its expected "
        f"number of changed answers is beta; {facts['rr_capped']} people could not reach the largest beta even at "
        f"epsilon 0) is averaged over {draws} draws. Seed {seed}; {seconds:.0f} s. Without a defence the best "
        f"attacker's balanced accuracy is {undefended:.3f} ({1 / len(answers.sensitive_values):.2f}, a guess, is no "
        f"information): these survey "
        f"answers say little about {answers.sensitive!r}, so read the curves as how much of that little is left.")
    os.replace(out / ".note.txt.tmp", out / "note.txt")
    click.echo(table[SHOWN].round(3).to_string(index=False))
    defender = table[(table["attacker"] == DEFENDER) & (table["defence"] == "attriguard")]
    click.echo(f"defender's classifier under AttriGuard: balanced accuracy {defender['balanced_accuracy'].iloc[0]:.3f}"
               f" at beta {budgets[0]} -> {defender['balanced_accuracy'].iloc[-1]:.3f} at beta {budgets[-1]}; "
               f"results: {out / 'attriguard.csv'} ({seconds:.0f} s)", err=True)
