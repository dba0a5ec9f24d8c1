"""`mi-harness analyze`: the tables as CSV and one self-contained HTML report with the figures inside it."""
from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from mi_harness.judges import JUDGE_MEANINGS

from . import plots
from .machine import deep_lineup_accuracy, screening_table, side_by_side
from .metrics import accuracy_table, compare_countermeasures, kappa_across_runs
from .trees import EXPLANATIONS, SHOWN, figures_of

TINY = 10
"""Below this many answers about reconstructions the report says the study is too small to conclude anything."""


def build_tables(frame: pd.DataFrame, method: str, alpha: float) -> dict[str, pd.DataFrame]:
    tables = {}
    for who in ("all", "skilled"):
        tables[f"accuracy_{who}"] = accuracy_table(frame, workers=who, method=method, alpha=alpha)
        tables[f"accuracy_{who}_by_run"] = accuracy_table(frame, by=("model", "attack", "countermeasure", "blur",
                                                                     "run"), workers=who, method=method, alpha=alpha)
        tables[f"accuracy_{who}_by_model_run"] = accuracy_table(frame, by=("model", "run"), workers=who,
                                                                method=method, alpha=alpha)
        tables[f"countermeasures_{who}"] = compare_countermeasures(frame, workers=who, alpha=alpha)
    return tables


def write_report(frame: pd.DataFrame, out_dir: str | Path, title: str, settings: dict | None = None,
                 method: str = "wilson", alpha: float = 0.05, gallery: pd.DataFrame | None = None,
                 machine: pd.DataFrame | None = None,
                 trees: dict[str, dict[str, pd.DataFrame]] | None = None,
                 deep_lineups: pd.DataFrame | None = None) -> Path:
    """``gallery`` (from the database, see ``load.reconstruction_gallery``) adds the photo-beside-reconstruction
    figure; an export has no images. ``machine`` (``machine.read_machine_scores``) adds the machine evaluator's
    scores beside the people's; ``trees`` (folder -> its tables, ``trees.read_tree_results``) adds the
    attribute-inference section; ``deep_lineups`` (``machine.deep_lineup_answers``) the deep face judge's answers
    on the study's own lineups, beside the people's."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    reconstructions = frame[~frame["gold"]]
    tables = build_tables(frame, method, alpha)
    if deep_lineups is not None:
        tables["deep_lineup_answers"] = deep_lineups
    if machine is not None or deep_lineups is not None:
        tables["people_and_machine"] = side_by_side(
            tables["accuracy_all"], tables["accuracy_skilled"], machine,
            deep_lineup_accuracy(deep_lineups) if deep_lineups is not None else None)
    if (settings or {}).get("screening"):
        tables["screening"] = screening_table(settings)
    for name, table in tables.items():
        table.to_csv(out / "tables" / f"{name}.csv", index=False)
    kappa = {who: kappa_across_runs(frame[frame["skilled"]] if who == "skilled" else frame)
             for who in ("all", "skilled")}
    (out / "tables" / "kappa.json").write_text(json.dumps(kappa, indent=1))
    figures = []
    if len(reconstructions):
        figures += plots.accuracy_per_model({"all": tables["accuracy_all_by_model_run"],
                                             "skilled": tables["accuracy_skilled_by_model_run"]}, out / "figures")
        figures += plots.accuracy_against_rounding(tables["accuracy_all"], out / "figures")
        if "people_and_machine" in tables:  # the deep judge's lineup hit rate, else the evaluator's top-1
            figures += plots.people_against_machine(tables["people_and_machine"], out / "figures")
    if gallery is not None:
        figures += plots.reconstruction_gallery(gallery, out / "figures")
    page = _html(title, frame, tables, kappa, figures, settings or {}, method, alpha)
    if trees:
        page = page.replace("</body>", _trees_html(trees, out) + "</body>")
    (out / "report.html").write_text(page)
    return out / "report.html"


def _html(title, frame, tables, kappa, figures, settings, method, alpha) -> str:
    reconstructions = frame[~frame["gold"]]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(frame)} answers ({len(reconstructions)} about reconstructions, "
             f"{int(frame['gold'].sum())} on gold items) from {frame['worker'].nunique()} workers in "
             f"{frame['run'].nunique()} runs; "
             f"{int(frame.loc[~frame['gold'] & frame['skilled']].shape[0])} answers from skilled workers. "
             f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</p>"]
    if len(reconstructions) < TINY:
        parts.append(f'<p class="warning">Only {len(reconstructions)} answers about reconstructions: too few to '
                     "conclude anything. The tables below are what there is.</p>")
    parts.append("<h2>Settings</h2><ul>")
    parts.append(f"<li>intervals: {'Wilson score' if method == 'wilson' else 'Clopper–Pearson'} ({method!r} in "
                 f"statsmodels <code>proportion_confint</code>), {1 - alpha:.0%}</li>")
    parts.append("<li>chance levels: a random face is right in one target-present lineup in five; always answering "
                 '"not in this lineup" is right in every target-absent lineup</li>')
    parts.append("<li>test against chance: exact one-sided binomial test of the hit rate (target-present lineups) "
                 "against 1/5</li>")
    if settings.get("skilled_definition"):
        parts.append(f"<li>{html.escape(settings['skilled_definition'])}</li>")
    for key in ("runs", "target_share", "answers_per_item", "allow_absent", "gold_items", "seed"):
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
    for path in figures:
        if path.suffix == ".png":
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"></figure>')
    for who in ("all", "skilled"):
        parts.append(f"<h2>Identification accuracy, {who} workers</h2>")
        parts.append(_table(tables[f"accuracy_{who}"], ["model", "attack", "countermeasure", "blur", "answers",
                                                       "accuracy", "ci_low", "ci_high", "hits", "present",
                                                       "hit_rate", "correct_rejections", "false_ids", "absent",
                                                       "chance_random_face", "chance_always_absent",
                                                       "p_vs_chance", "workers"]))
        parts.append(f"<h3>Countermeasures against none, {who} workers</h3>")
        parts.append(_table(tables[f"countermeasures_{who}"], ["model", "attack", "countermeasure", "accuracy",
                                                              "baseline_accuracy", "answers", "test", "p",
                                                              "p_adjusted", "significant", "correction"]))
        k = kappa[who]
        parts.append(f"<p>Agreement of the runs' verdicts (Fleiss' kappa), {who} workers: "
                     + (f"{k['kappa']:.3f} [{k['ci_low']:.3f}, {k['ci_high']:.3f}] over {k['items']} items and "
                        f"{k['runs']} runs ({html.escape(k['note'])})" if k["kappa"] is not None
                        else html.escape(k["note"])) + "</p>")
    if "people_and_machine" in tables:
        parts.append("<h2>People and the machine judges</h2><ul>"
                     + "".join(f"<li>{html.escape(m)}</li>" for m in JUDGE_MEANINGS.values()) + "</ul>"
                     "<p><code>deep_lineup_accuracy</code> is the deep judge answering the study's own lineups (the "
                     "same five faces, and \"absent\" when no face is within its same-person distance and the "
                     "study allows it): directly comparable with the people's accuracy. The evaluator's columns "
                     "(<code>mi-harness evaluate</code>) name one of all 40 subjects by nearest neighbour over the "
                     "AT&amp;T photos: top-1 among 40 is the harder test, so they are comparable in direction, not in "
                     "level. Unusable items count as failures there. Machine judges are not people.</p>")
        parts.append(_table(tables["people_and_machine"], ["model", "attack", "countermeasure", "blur", "answers",
                                                           "accuracy", "hit_rate", "skilled_accuracy",
                                                           "skilled_hit_rate", "deep_lineups", "deep_lineup_accuracy",
                                                           "deep_hit_rate", "machine_items", "unusable", "top1_deep",
                                                           "deep_same_person", "top1_pixel", "top1_eigen",
                                                           "top5_eigen", "ssim"]))
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:1rem}"
             "table{border-collapse:collapse;font-size:.85rem}td,th{border-bottom:1px solid #ddd;padding:.2rem .5rem}"
             ".warning{background:#fff3cd;padding:.5rem}img{max-width:100%}")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


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
    if isinstance(value, float):
        return f"{value:.3g}" if value < 0.001 else f"{value:.3f}"
    return html.escape(str(value))
