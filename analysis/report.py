"""`mi-harness analyze`: the tables as CSV and one self-contained HTML report with the figures inside it.

The report opens with what a reader can act on: whether the answers are people's or the simulated panel's, the
findings in a few sentences, and one table per condition (people's accuracy with its clustered interval, the
control condition's level, the machine judges). The detail follows: every interval beside the naive one, the
contrasts, skilled workers, confidence, photo roles, lineup fairness, the machine section.
"""
from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from mi_harness.answers import SIMULATED_WORKER
from mi_harness.judges import JUDGE_MEANINGS

from . import plots
from .clustered import (
    BOOTSTRAP_DRAWS,
    CONTRAST_WITHIN,
    accuracy_by_photo_role,
    clustered_accuracy,
    clustered_contrasts,
)
from .confidence import confidence_accuracy, roc_analysis
from .lineup_fairness import lineup_fairness
from .machine import deep_lineup_accuracy, screening_table, side_by_side
from .metrics import GROUP, accuracy_table, compare_countermeasures, kappa_across_runs, reconstructions
from .trees import EXPLANATIONS, SHOWN, figures_of

TINY = 10
"""Below this many answers about reconstructions the report says the study is too small to conclude anything."""
WHO = ("all", "skilled")


def answer_source(frame: pd.DataFrame) -> str:
    """"simulated" when every worker is one of the simulated panel's bots, "people" when none is, else "mixed"."""
    bots = frame["worker"].astype(str).map(lambda w: bool(SIMULATED_WORKER.match(w)))
    return "simulated" if bots.all() else "people" if not bots.any() else "mixed"


def with_clustered(frame: pd.DataFrame, who: str, method: str, alpha: float, bootstrap: int) -> tuple[pd.DataFrame,
                                                                                                      dict]:
    """The naive accuracy table (counts, chance levels) with the clustered intervals leading: ``ci_low``/``ci_high``
    and ``hit_ci_low``/``hit_ci_high`` from the mixed model, the bootstrap's beside them, the naive ones renamed
    ``naive_*``."""
    naive = accuracy_table(frame, workers=who, method=method, alpha=alpha).rename(columns={
        "ci_low": "naive_low", "ci_high": "naive_high", "hit_ci_low": "naive_hit_low", "hit_ci_high": "naive_hit_high",
        "p_vs_chance": "naive_p_vs_chance"})
    if naive.empty:
        return naive, {}
    clustered, model = clustered_accuracy(frame, workers=who, alpha=alpha, bootstrap=bootstrap)
    keep = [*GROUP, "items", "model_accuracy", "ci_low", "ci_high", "boot_low", "boot_high"]
    table = naive.drop(columns=["naive_low", "naive_high"]).merge(clustered[keep + ["naive_low", "naive_high"]],
                                                                   on=list(GROUP), how="left")
    present = frame[frame["target_present"]]
    if len(reconstructions(present, who)):
        hits, _ = clustered_accuracy(present, workers=who, alpha=alpha, bootstrap=0)
        table = table.merge(hits[[*GROUP, "ci_low", "ci_high"]].rename(
            columns={"ci_low": "hit_ci_low", "ci_high": "hit_ci_high"}), on=list(GROUP), how="left")
    table["above_chance"] = table["ci_low"] > table["chance_random_face"]
    return table, model


def with_naive_tests(contrasts: pd.DataFrame, frame: pd.DataFrame, who: str, alpha: float) -> pd.DataFrame:
    """The mixed model's contrasts with the naive test's p-value beside them, for comparison."""
    naive = compare_countermeasures(frame, within=CONTRAST_WITHIN, workers=who, alpha=alpha)
    if contrasts.empty or naive.empty:
        return contrasts
    naive = naive[[*CONTRAST_WITHIN, "countermeasure", "p_adjusted"]].rename(columns={"p_adjusted": "naive_p_adjusted"})
    return contrasts.merge(naive, on=[*CONTRAST_WITHIN, "countermeasure"], how="left")


def build_tables(frame: pd.DataFrame, method: str, alpha: float,
                 bootstrap: int = BOOTSTRAP_DRAWS) -> tuple[dict[str, pd.DataFrame], dict]:
    tables, models = {}, {}
    for who in WHO:
        tables[f"accuracy_{who}"], models[who] = with_clustered(frame, who, method, alpha, bootstrap)
        tables[f"accuracy_{who}_by_run"] = accuracy_table(frame, by=(*GROUP, "run"), workers=who, method=method,
                                                          alpha=alpha)
        tables[f"accuracy_{who}_by_model_run"] = accuracy_table(frame, by=("model", "run"), workers=who,
                                                                method=method, alpha=alpha)
        tables[f"countermeasures_{who}"] = with_naive_tests(
            clustered_contrasts(frame, workers=who, alpha=alpha, bootstrap=bootstrap), frame, who, alpha)
    tables["photo_role"] = accuracy_by_photo_role(frame, alpha=alpha, bootstrap=bootstrap)
    tables["confidence_accuracy"] = confidence_accuracy(frame, by=GROUP)
    tables["roc_points"], tables["roc"] = roc_analysis(frame, alpha=alpha)
    tables["control_lineups"], tables["control"] = lineup_fairness(frame, alpha=alpha)
    return tables, models


def findings_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per condition: people's accuracy with its clustered interval, the skilled workers', the control
    condition's level (the target picked with no information), and the machine judges where there are some."""
    people = tables["accuracy_all"]
    if people.empty:
        return people
    out = people[[*GROUP, "answers", "items", "workers", "accuracy", "ci_low", "ci_high", "chance_random_face"]]
    skilled = tables["accuracy_skilled"]
    if not skilled.empty:
        out = out.merge(skilled[[*GROUP, "accuracy"]].rename(columns={"accuracy": "skilled_accuracy"}),
                        on=list(GROUP), how="left")
    control = tables["control"]
    if not control.empty:
        out = out.merge(control[[*GROUP, "target_picked"]].rename(columns={"target_picked": "control_target_picked"}),
                        on=list(GROUP), how="left")
    machine = tables.get("people_and_machine")
    if machine is not None:
        columns = [c for c in ("deep_lineup_accuracy", "top1_deep", "top1_eigen", "top1_pixel") if c in machine]
        out = out.merge(machine[[*GROUP, *columns]], on=list(GROUP), how="left")
    return out


def _percent(value) -> str:
    return f"{value:.0%}"


def _condition(row) -> str:
    return plots.condition_label(row)


def findings(frame: pd.DataFrame, tables: dict[str, pd.DataFrame], models: dict, source: str,
             alpha: float = 0.05) -> list[str]:
    """The report's first paragraph: a few sentences a reader can act on, every number from the tables below."""
    people = tables["accuracy_all"]
    data = reconstructions(frame)
    who = {"people": "people", "simulated": "bots of the simulated panel, not people",
           "mixed": "people and simulated bots together"}[source]
    sentences = [f"{len(data)} answers from {data['worker'].nunique()} workers ({who}) about "
                 f"{data['item'].nunique()} reconstructions in {len(people)} conditions."]
    if people.empty:
        return sentences
    best, worst = people.loc[people["accuracy"].idxmax()], people.loc[people["accuracy"].idxmin()]
    chance = people["chance_random_face"].mean()
    above = int(people["above_chance"].sum())
    interval = f"{1 - alpha:.0%} interval {_percent(best['ci_low'])}–{_percent(best['ci_high'])}"
    if len(people) == 1:
        sentences.append(f"Accuracy was {_percent(best['accuracy'])} ({_condition(best)}, {interval}), "
                         f"{'above' if above else 'not clearly above'} the random-face level of {_percent(chance)}.")
    else:
        sentences.append(f"Accuracy ranged from {_percent(worst['accuracy'])} ({_condition(worst)}) to "
                         f"{_percent(best['accuracy'])} ({_condition(best)}, {interval}); {above} of {len(people)} "
                         f"conditions are above the random-face level of {_percent(chance)} by their clustered "
                         "interval.")
    model = models.get("all") or {}
    if model:
        sentences.append(f"Answers move together by worker (sd {model['sd_worker']:.2f}) and by item (sd "
                         f"{model['sd_item']:.2f}, log-odds), so every interval here comes from a mixed model with "
                         "both as random effects; the naive intervals beside them treat answers as independent and are "
                         "too narrow.")
    contrasts = tables["countermeasures_all"]
    if not contrasts.empty:
        significant = contrasts[contrasts["significant"]]
        listed = "; ".join(f"{_condition(r)}: {r['difference']:+.0%} [{r['ci_low']:+.0%}, {r['ci_high']:+.0%}]"
                           for _, r in significant.iterrows())
        sentences.append(f"{len(significant)} of {len(contrasts)} countermeasures changed accuracy significantly "
                         f"against none (mixed model, Holm-adjusted)" + (f": {listed}." if listed else "."))
    control = tables["control"]
    if not control.empty:
        overall = control.iloc[0]
        e = (f", mean Tredoux's E {overall['mean_tredoux_e']:.2f} of 5" if "mean_tredoux_e" in overall
             and pd.notna(overall["mean_tredoux_e"]) else "")
        sentences.append(f"With no information about the target (control items), workers picked it in "
                         f"{_percent(overall['target_picked'])} of {int(overall['mock_witnesses'])} answers (a fair "
                         f"lineup: at most 20%){e}.")
    machine = tables.get("people_and_machine")
    if machine is not None and "deep_lineup_accuracy" in machine and machine["deep_lineup_accuracy"].notna().any():
        weights = machine["deep_lineups"].fillna(0)
        deep = (machine["deep_lineup_accuracy"].fillna(0) * weights).sum() / weights.sum()
        sentences.append(f"The deep face judge, answering the same lineups, was right in {_percent(deep)} of them, "
                         f"people in {_percent(data['correct'].mean())}; a machine judge is not a person.")
    if source != "people":
        sentences.append("The simulated panel is a model of perception, not people: its numbers rehearse the study "
                         "and test the pipeline, they say nothing about human recognition.")
    return sentences


def write_report(frame: pd.DataFrame, out_dir: str | Path, title: str, settings: dict | None = None,
                 method: str = "wilson", alpha: float = 0.05, gallery: pd.DataFrame | None = None,
                 machine: pd.DataFrame | None = None,
                 trees: dict[str, dict[str, pd.DataFrame]] | None = None,
                 deep_lineups: pd.DataFrame | None = None, bootstrap: int = BOOTSTRAP_DRAWS) -> Path:
    """``gallery`` (from the database, see ``load.reconstruction_gallery``) adds the photo-beside-reconstruction
    figure; an export has no images. ``machine`` (``machine.read_machine_scores``) adds the machine evaluator's
    scores beside the people's; ``trees`` (folder -> its tables, ``trees.read_tree_results``) adds the
    attribute-inference section; ``deep_lineups`` (``machine.deep_lineup_answers``) the deep face judge's answers
    on the study's own lineups, beside the people's."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    tables, models = build_tables(frame, method, alpha, bootstrap)
    if deep_lineups is not None:
        tables["deep_lineup_answers"] = deep_lineups
    if machine is not None or deep_lineups is not None:
        tables["people_and_machine"] = side_by_side(
            tables["accuracy_all"], tables["accuracy_skilled"], machine,
            deep_lineup_accuracy(deep_lineups) if deep_lineups is not None else None)
    if (settings or {}).get("screening"):
        tables["screening"] = screening_table(settings)
    tables["findings"] = findings_table(tables)
    for name, table in tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
    (out / "tables" / "models.json").write_text(json.dumps(models, indent=1))
    kappa = {who: kappa_across_runs(reconstructions(frame, who)) for who in WHO}
    (out / "tables" / "kappa.json").write_text(json.dumps(kappa, indent=1))
    figures = []
    if len(reconstructions(frame)):
        figures += plots.accuracy_per_condition({who: tables[f"accuracy_{who}"] for who in WHO}, out / "figures")
        figures += plots.accuracy_against_rounding(tables["accuracy_all"], out / "figures")
        if "people_and_machine" in tables:  # the deep judge's lineup hit rate, else the evaluator's top-1
            figures += plots.people_against_machine(tables["people_and_machine"], out / "figures")
        figures += plots.roc_curves(tables["roc_points"], tables["roc"], out / "figures")
        figures += plots.confidence_accuracy_curve(tables["confidence_accuracy"], out / "figures")
    if gallery is not None:
        figures += plots.reconstruction_gallery(gallery, out / "figures")
    page = _html(title, frame, tables, models, kappa, figures, settings or {}, method, alpha)
    if trees:
        page = page.replace("</body>", _trees_html(trees, out) + "</body>")
    (out / "report.html").write_text(page)
    return out / "report.html"


SOURCE_BANNER = {
    "people": "These answers came from people.",
    "simulated": "These answers came from the simulated panel: bots with a model of perception, not people. Use "
                 "them to rehearse the study and check the pipeline, not as evidence of what people recognise.",
    "mixed": "These answers mix people and the simulated panel's bots (worker ids like bot-0-001): separate them "
             "before drawing conclusions about people.",
}
ACCURACY_COLUMNS = ["model", "attack", "countermeasure", "blur", "answers", "items", "workers", "accuracy", "ci_low",
                    "ci_high", "boot_low", "boot_high", "naive_low", "naive_high", "hits", "present", "hit_rate",
                    "hit_ci_low", "hit_ci_high", "correct_rejections", "false_ids", "absent", "chance_random_face",
                    "chance_always_absent", "above_chance"]
FINDINGS_COLUMNS = ["model", "attack", "countermeasure", "blur", "answers", "items", "accuracy", "ci_low", "ci_high",
                    "skilled_accuracy", "control_target_picked", "deep_lineup_accuracy", "top1_deep", "top1_eigen"]


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"></figure>'


def _html(title, frame, tables, models, kappa, figures, settings, method, alpha) -> str:
    data = reconstructions(frame)
    source = answer_source(frame)
    pngs = {path.stem: path for path in figures if path.suffix == ".png"}
    naive = "Wilson score" if method == "wilson" else "Clopper–Pearson"
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="source {source}"><strong>{html.escape(SOURCE_BANNER[source])}</strong></p>']
    if len(data) < TINY:
        parts.append(f'<p class="warning">Only {len(data)} answers about reconstructions: too few to '
                     "conclude anything. The tables below are what there is.</p>")
    sentences = findings(frame, tables, models, source, alpha)
    parts.append("<h2>Findings</h2><p>" + " ".join(html.escape(s) for s in sentences) + "</p>")
    parts.append(f"<p>Per condition: people's accuracy with its {1 - alpha:.0%} interval from the mixed model "
                 "(<code>ci_low</code>–<code>ci_high</code>), skilled workers' accuracy on answers their skill was "
                 "not measured on, how often the target was picked on control items (no information about it), "
                 "and the machine judges where the report has them.</p>")
    parts.append(_table(tables["findings"], FINDINGS_COLUMNS))
    if "accuracy_per_condition" in pngs:
        parts.append(_figure(pngs.pop("accuracy_per_condition")))
    parts.append(f"<p>{len(frame)} answers in all ({len(data)} about reconstructions, {int(frame['gold'].sum())} on "
                 f"gold items, {len(frame) - len(data) - int(frame['gold'].sum())} on control items) from "
                 f"{frame['worker'].nunique()} workers in {frame['run'].nunique()} runs; "
                 f"{len(reconstructions(frame, 'skilled'))} reported answers from skilled workers. "
                 f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</p>")
    parts.append("<h2>Settings and methods</h2><ul>")
    parts.append(f"<li>intervals ({1 - alpha:.0%}), leading: a logistic regression with a fixed effect per "
                 "condition and crossed random intercepts for worker and item, fitted by the Laplace approximation "
                 "(restricted likelihood, as lme4 / glmmTMB do); the interval is for the population accuracy, a new "
                 "worker on a new item. Check: a two-way cluster bootstrap over workers and items "
                 f"(<code>boot_*</code>). Naive, for comparison only: {naive} (<code>naive_*</code>), which treats "
                 "every answer as independent.</li>")
    parts.append("<li>countermeasures: each level against <code>none</code> within the same model, attack and blur; "
                 "a Wald test of the log-odds difference in the mixed model, Holm-adjusted; the naive test's "
                 "adjusted p beside it</li>")
    parts.append("<li>chance levels: a random face is right in one target-present lineup in five; always answering "
                 '"not in this lineup" is right in every target-absent lineup; <code>above_chance</code>: the '
                 "clustered interval lies above the random-face level</li>")
    if settings.get("skilled_definition"):
        parts.append(f"<li>{html.escape(settings['skilled_definition'])}</li>")
    else:
        parts.append("<li>skilled workers: the flag the export carries; without gold items their tables report only "
                     "the answers the skill was not measured on (every other answer)</li>")
    for key in ("runs", "target_share", "answers_per_item", "allow_absent", "gold_items", "filler_policy",
                "matched_on", "photo_role", "control_items", "control_probe", "confidence_scale", "seed"):
        if key in settings:
            parts.append(f"<li>{key}: {html.escape(str(settings[key]))}</li>")
    parts.append("</ul>")
    if "screening" in tables:
        record = settings["screening"]
        verb = "kept them (the study was created with --keep-unusable)" if record["kept_unusable"] else \
            "left them out of the study"
        parts.append(f"<h2>Unusable items</h2><p>Screening found {record['unusable']} of {record['items']} "
                     f"reconstructions unusable for a person (near-constant, or grain with no face-scale "
                     f"structure) and {verb}; the machine tables count them as failures of the attack.</p>")
        parts.append(_table(tables["screening"], ["model", "attack", "countermeasure", "blur", "items", "unusable",
                                                  "left_out", "reasons"]))
    for who in WHO:
        parts.append(f"<h2>Identification accuracy, {who} workers</h2>")
        if who == "skilled":
            parts.append("<p>Skilled workers' answers, leaving out those their skill was measured on.</p>")
        parts.append(_table(tables[f"accuracy_{who}"], ACCURACY_COLUMNS))
        parts.append(f"<h3>Countermeasures against none, {who} workers</h3>")
        parts.append(_table(tables[f"countermeasures_{who}"], [
            "model", "attack", "blur", "countermeasure", "baseline_accuracy", "accuracy", "difference", "ci_low",
            "ci_high", "boot_low", "boot_high", "odds_ratio", "p", "p_adjusted", "significant", "naive_p_adjusted"]))
        k = kappa[who]
        parts.append(f"<p>Agreement of the runs' verdicts (Fleiss' kappa), {who} workers: "
                     + (f"{k['kappa']:.3f} [{k['ci_low']:.3f}, {k['ci_high']:.3f}] over {k['items']} items and "
                        f"{k['runs']} runs ({html.escape(k['note'])})" if k["kappa"] is not None
                        else html.escape(k["note"])) + "</p>")
    if "accuracy_against_rounding" in pngs:
        parts.append(_figure(pngs.pop("accuracy_against_rounding")))
    parts += _confidence_html(tables, pngs)
    parts += _photo_role_html(tables)
    parts += _control_html(tables, settings)
    if "people_and_machine" in tables:
        parts.append("<h2>People and the machine judges</h2><ul>"
                     + "".join(f"<li>{html.escape(m)}</li>" for m in JUDGE_MEANINGS.values()) + "</ul>"
                     "<p><code>deep_lineup_accuracy</code> is the deep judge answering the study's own lineups (the "
                     "same five faces, and \"absent\" when no face is within its same-person distance and the "
                     "study allows it): directly comparable with the people's accuracy. The evaluator's columns "
                     "(<code>mi-harness evaluate</code>) name one of all 40 subjects by nearest neighbour over the "
                     "AT&amp;T photos: top-1 among 40 is the harder test, so they are comparable in direction, not in "
                     "level. Unusable items count as failures there. Machine judges are not people.</p>")
        if "people_against_machine" in pngs:
            parts.append(_figure(pngs.pop("people_against_machine")))
        parts.append(_table(tables["people_and_machine"], ["model", "attack", "countermeasure", "blur", "answers",
                                                           "accuracy", "hit_rate", "skilled_accuracy",
                                                           "skilled_hit_rate", "deep_lineups", "deep_lineup_accuracy",
                                                           "deep_hit_rate", "machine_items", "unusable", "top1_deep",
                                                           "deep_same_person", "top1_pixel", "top1_eigen",
                                                           "top5_eigen", "ssim"]))
    parts += [_figure(path) for path in pngs.values()]
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:1rem}"
             "table{border-collapse:collapse;font-size:.85rem}td,th{border-bottom:1px solid #ddd;padding:.2rem .5rem}"
             ".warning{background:#fff3cd;padding:.5rem}img{max-width:100%}"
             ".source{padding:.5rem;border-left:4px solid #888}.simulated,.mixed{background:#fde8e8}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _confidence_html(tables, pngs) -> list[str]:
    if tables["confidence_accuracy"].empty:
        return []
    parts = ["<h2>Confidence</h2><p>After each choice workers said how sure they were. The confidence-accuracy "
             "characteristic gives, at each level, the share of identifications that picked the target (innocent "
             "identifications estimated as target-absent face picks divided by 5, as in eyewitness research). The "
             "ROC cumulates hit rate against that false-ID rate from the most confident answers down; the partial "
             "area runs to the smallest of the conditions' largest false-ID rates, so all cover the same range, "
             "with percentile bootstrap intervals over answers.</p>"]
    if "confidence_accuracy" in pngs:
        parts.append(_figure(pngs.pop("confidence_accuracy")))
    parts.append(_table(tables["confidence_accuracy"], [*GROUP, "confidence", "answers", "target_ids",
                                                        "innocent_ids", "suspect_id_accuracy", "proportion_correct"]))
    if not tables["roc"].empty:
        if "roc" in pngs:
            parts.append(_figure(pngs.pop("roc")))
        parts.append(_table(tables["roc"], ["model", "attack", "countermeasure", "blur", "target_present",
                                            "target_absent", "pauc", "pauc_low", "pauc_high", "cutoff",
                                            "max_hit_rate", "max_false_id_rate"]))
    return parts


def _photo_role_html(tables) -> list[str]:
    if tables["photo_role"].empty:
        return []
    return ["<h2>Accuracy by the target photo's role</h2><p>Hit rate in target-present lineups when the lineup showed "
            "a photo the model was trained on against a validation photo it never saw, where a condition has both, "
            "with intervals from the mixed model.</p>",
            _table(tables["photo_role"], [*GROUP, "photo_role", "answers", "items", "hit_rate", "ci_low",
                                          "ci_high", "naive_low", "naive_high"])]


def _control_html(tables, settings) -> list[str]:
    if tables["control"].empty:
        return []
    policy = settings.get("filler_policy")
    return ["<h2>Lineup fairness (control items)</h2>"
            f"<p>Mock-witness items{f' (filler policy {html.escape(str(policy))})' if policy else ''}: the lineup "
            "shown with a probe that says nothing about the target. Functional size is face choices per choice of "
            "the target (5 is fair for five faces, 1 gives the target away; Wilson interval inverted); Tredoux's E "
            "is 1 / sum of squared shares of choices over the five places (5: spread evenly; Tredoux's large-sample "
            "interval). "
            "Per condition and overall, the mean of the lineups' E with a bootstrap interval over lineups.</p>",
            _table(tables["control"], [*GROUP, "lineups", "mock_witnesses", "target_picked", "face_choices",
                                       "target_choices", "functional_size", "functional_size_low",
                                       "functional_size_high", "mean_tredoux_e", "mean_tredoux_e_low",
                                       "mean_tredoux_e_high"]),
            "<h3>Each control lineup</h3>",
            _table(tables["control_lineups"], ["lineup", *GROUP, "mock_witnesses", "target_picked", "face_choices",
                                               "functional_size", "functional_size_low", "functional_size_high",
                                               "tredoux_e", "tredoux_e_low", "tredoux_e_high"])]


def _trees_html(folders: dict[str, dict[str, pd.DataFrame]], out: Path) -> str:
    parts = ["<h2>Attribute inference from decision trees and the warfarin model</h2>",
             "<p>The paper's section 4 and 6 attacks (<code>mi-harness trees</code>, "
             "<code>mi-harness warfarin</code>; <code>mi-harness attriguard</code> measures a defence): "
             "each attack's accuracy, and precision and recall of the sensitive answer, averaged over many models "
             "trained on stratified halves, on the individuals a model was trained on and on others; the paper's "
             "figures beside ours where it gives them.</p>"]
    for folder, results in folders.items():
        parts.append(f"<h3>{html.escape(str(folder))}</h3>")
        for name, table in results.items():
            table.to_csv(out / "tables" / f"trees_{Path(folder).name}_{name}.csv", index=False)
            explanation = f"<p>{html.escape(EXPLANATIONS[name])}</p>" if name in EXPLANATIONS else ""
            parts.append(f"<h4>{name}</h4>{explanation}" + _table(table, SHOWN.get(name, list(table.columns))))
        for path in figures_of(folder):
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"></figure>')
        notes = Path(folder) / "note.txt"
        if notes.is_file():
            parts.append(f"<p>{html.escape(notes.read_text())}</p>")
    return "".join(parts)


def _table(table: pd.DataFrame, columns: list[str]) -> str:
    if table.empty:
        return "<p>No answers in this category.</p>"
    shown = [c for c in columns if c in table.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in shown) + "</tr>"
                   for _, row in table.iterrows())
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float) and value == float("inf"):
        return "∞"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 0.001 else f"{value:.3f}"
    return html.escape(str(value))
