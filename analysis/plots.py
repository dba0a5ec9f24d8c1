"""The report's figures (matplotlib, written as PNG and SVG)."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

ROUNDING = re.compile(r"^round:([0-9.eE+-]+)$")


def save(figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    for path in paths:
        figure.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(figure)
    return paths


def condition_label(row) -> str:
    """model · attack · countermeasure (· blur): one condition, never pooled across attacks."""
    return " · ".join(str(row[k]) for k in ("model", "attack", "countermeasure", "blur") if k in row and row[k])


INTERVAL_NOTE = ("dot: observed accuracy; black: 95% interval from the mixed model (workers and items as random "
                 "effects); grey: the naive Wilson interval, which treats answers as independent; "
                 "dotted: a random face")


def accuracy_per_condition(tables: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Accuracy per model x attack x countermeasure x blur, for all and for skilled workers side by side: the
    clustered interval in black over the naive one in grey, the random-face level as a dotted line. The key is a
    caption under the panels, so nothing covers the data."""
    labels = sorted({condition_label(row) for table in tables.values() for _, row in table.iterrows()},
                    reverse=True)
    if not labels:
        return []
    position = {label: k for k, label in enumerate(labels)}
    figure, axes = plt.subplots(1, len(tables), figsize=(3.4 * len(tables) + 2.6, 0.3 * len(labels) + 1.4),
                                sharey=True, squeeze=False)
    for axis, (who, table) in zip(axes[0], tables.items()):
        axis.set_title(f"{who} workers", fontsize=9)
        for _, row in table.iterrows():
            y = position[condition_label(row)]
            axis.hlines(y, row["naive_low"], row["naive_high"], color="0.75", linewidth=6)
            axis.hlines(y, row["ci_low"], row["ci_high"], color="black", linewidth=1.5)
            axis.plot(row["accuracy"], y, "o", color="black", markersize=4)
        if not table.empty:
            axis.axvline(table["chance_random_face"].mean(), color="grey", linestyle=":", linewidth=1)
        axis.set_xlim(-0.01, 1.01)  # a dot at 0 or 1 stays whole
        axis.set_xlabel("identification accuracy", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(axis="x", color="0.92")
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].set_ylim(-0.7, len(labels) - 0.3)
    figure.text(0.01, -0.02, INTERVAL_NOTE, fontsize=7, ha="left", va="top", wrap=True)
    return save(figure, out_dir, "accuracy_per_condition")


def accuracy_against_rounding(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Accuracy against the rounding level r of round:r (the unprotected model at the left), per model and attack,
    with the clustered intervals. Every series shares one axis of levels, so a level screening emptied for one
    model does not shift the others."""
    series = {}
    for (model, attack, blur), rows in table.groupby(["model", "attack", "blur"]):
        levels = []
        for _, row in rows.iterrows():
            match = ROUNDING.match(row["countermeasure"])
            if row["countermeasure"] == "none" or match:
                levels.append((float(match.group(1)) if match else 0.0, row))
        if len(levels) >= 2:
            series[(model, attack, blur)] = sorted(levels, key=lambda pair: pair[0])
    if not series:
        return []
    every_level = sorted({level for levels in series.values() for level, _ in levels})
    position = {level: k for k, level in enumerate(every_level)}
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    for k, ((model, attack, blur), levels) in enumerate(series.items()):
        # side by side within a level, so that intervals do not hide one another
        x = [position[level] + 0.06 * (k - (len(series) - 1) / 2) for level, _ in levels]
        line, = axis.plot(x, [r["accuracy"] for _, r in levels], marker="o",
                          label=f"{model} ({', '.join(v for v in (attack, blur) if v)})")
        # the clustered interval is for the population accuracy, so it need not be centred on the observed one
        axis.vlines(x, [r["ci_low"] for _, r in levels], [r["ci_high"] for _, r in levels], color=line.get_color())
    axis.set_xticks(list(position.values()), ["none" if level == 0 else f"{level:g}" for level in position])
    axis.set_xlabel("confidences rounded to")
    axis.set_ylabel("identification accuracy")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)  # beside, not over, the data
    return save(figure, out_dir, "accuracy_against_rounding")


def reconstruction_gallery(gallery: pd.DataFrame, out_dir: Path, subjects: int = 8) -> list[Path]:
    """Like the paper's softmax / MLP / DAE figure: a real photo of each person, then each model's reconstruction
    (a cell says "not in the study" where screening left the reconstruction out, rather than stay blank)."""
    import io

    from PIL import Image

    if gallery.empty:
        return []
    models = sorted(gallery["model"].unique())
    shown = sorted(gallery["subject"].unique(), key=lambda s: (len(s), s))[:subjects]
    figure, axes = plt.subplots(len(shown), len(models) + 1, figsize=(1.3 * (len(models) + 1), 1.6 * len(shown)),
                                squeeze=False)
    for r, subject in enumerate(shown):
        rows = gallery[gallery["subject"] == subject]
        cells = [("photo", rows["photo"].dropna().iloc[0] if rows["photo"].notna().any() else None)]
        cells += [(m, rows.loc[rows["model"] == m, "reconstruction"].iloc[0] if (rows["model"] == m).any() else None)
                  for m in models]
        for c, (label, png) in enumerate(cells):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if png is not None:
                axis.imshow(Image.open(io.BytesIO(png)), cmap="gray", vmin=0, vmax=255)
            elif c > 0:  # not in the study: screening left it out (or the model has no item for this subject)
                axis.text(0.5, 0.5, "not in\nthe study", ha="center", va="center", fontsize=7, color="grey",
                          transform=axis.transAxes)
            if r == 0:
                axis.set_title(label, fontsize=9)
            if c == 0:
                axis.set_ylabel(subject, fontsize=9)
    return save(figure, out_dir, "reconstruction_gallery")


def people_against_machine(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Each condition's hit rate in the lineups (with its clustered interval) against the deep face judge's hit
    rate on the same target-present lineups (or, without it, the eigenface judge's top-1 among the 40 subjects),
    one panel per model: points above the diagonal are conditions people recognise more often than a face
    recogniser would. Points are numbered, and the numbers named under each panel, so no colour legend is needed."""
    deep = "deep_hit_rate" in table and table["deep_hit_rate"].notna().any()
    if "hit_ci_low" in table:  # conditions without target-present lineups have no hit rate to place
        table = table.dropna(subset=["hit_ci_low", "hit_ci_high"])
    x, x_label = (("deep_hit_rate", "deep face judge: hit rate, same lineups") if deep else
                  ("top1_eigen", "eigenface judge: top-1 among 40"))
    rows = table.dropna(subset=["hit_rate", x]) if "hit_rate" in table and x in table else table.iloc[0:0]
    if rows.empty:
        return []
    models = sorted(rows["model"].unique())
    figure, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.8), sharey=True, squeeze=False)
    for axis, model in zip(axes[0], models):
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        axis.axhline(0.2, color="grey", linestyle="--", linewidth=0.8)
        axis.text(1.0, 0.21, "random face", fontsize=6, color="grey", ha="right", va="bottom")
        key = []
        for number, (_, row) in enumerate(rows[rows["model"] == model].iterrows(), start=1):
            axis.vlines(row[x], row["hit_ci_low"], row["hit_ci_high"], color="black", linewidth=0.8)
            axis.plot(row[x], row["hit_rate"], marker="o", markersize=4, color="black")
            axis.annotate(str(number), (row[x], row["hit_rate"]), textcoords="offset points", xytext=(4, 2),
                          fontsize=7, bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
            key.append(f"{number}  " + " ".join(str(row[k]) for k in ("attack", "countermeasure", "blur") if row[k]))
        # the key under the panel: numbers on the points, names here, nothing over the data
        axis.text(0, -0.2, "\n".join(key), transform=axis.transAxes, fontsize=6.5, va="top", ha="left")
        axis.set_title(model, fontsize=9)
        axis.set_xlim(-0.02, 1.02)
        axis.set_ylim(0, 1.02)
        axis.set_xlabel(x_label, fontsize=8)
        axis.tick_params(labelsize=7)
    axes[0][0].set_ylabel("people: hit rate (target-present lineups)", fontsize=8)
    return save(figure, out_dir, "people_against_machine")


def legend_below(axis) -> None:
    """A legend under the axes, never over the data."""
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=6.5, frameon=False, ncol=1)


def roc_curves(points: pd.DataFrame, summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """ROC of each condition (hit rate against estimated innocent-suspect ID rate, from the most confident
    identifications down), one panel per model and attack, one curve per countermeasure, the common partial-AUC
    cutoff as a grey line; the key (with each curve's pAUC and interval) under each panel."""
    if points.empty:
        return []
    panels = sorted({(m, a) for m, a in zip(points["model"], points["attack"])})
    figure, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6), sharex=True, sharey=True,
                                squeeze=False)
    cutoff = float(summary["cutoff"].iloc[0])
    for axis, (model, attack) in zip(axes[0], panels):
        mine = summary[(summary["model"] == model) & (summary["attack"] == attack)]
        for _, row in mine.iterrows():
            curve = points[(points["model"] == model) & (points["attack"] == attack)
                           & (points["countermeasure"] == row["countermeasure"]) & (points["blur"] == row["blur"])]
            label = " ".join(str(v) for v in (row["countermeasure"], row["blur"]) if v)
            axis.plot(curve["false_id_rate"], curve["hit_rate"], marker="o", markersize=3, linewidth=1,
                      label=f"{label}: pAUC {row['pauc']:.3f} [{row['pauc_low']:.3f}, {row['pauc_high']:.3f}]")
        axis.axvline(cutoff, color="grey", linewidth=0.8)
        axis.set_title(f"{model} · {attack}", fontsize=9)
        axis.set_xlabel("false ID rate (target-absent picks / 5)", fontsize=8)
        axis.set_ylim(0, 1)
        axis.tick_params(labelsize=7)
        legend_below(axis)
    axes[0][0].set_xlim(0, None)
    axes[0][0].set_ylabel("hit rate (target picked)", fontsize=8)
    return save(figure, out_dir, "roc")


def confidence_accuracy_curve(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """The confidence-accuracy characteristic: of the identifications made at each confidence level, the share
    that picked the target; one panel per model and attack, one line per countermeasure, the key under each."""
    rows = table.dropna(subset=["suspect_id_accuracy"]) if not table.empty else table
    if rows.empty:
        return []
    panels = sorted({(m, a) for m, a in zip(rows["model"], rows["attack"])})
    figure, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.4), sharex=True, sharey=True,
                                squeeze=False)
    for axis, (model, attack) in zip(axes[0], panels):
        mine = rows[(rows["model"] == model) & (rows["attack"] == attack)]
        for (countermeasure, blur), line in mine.groupby(["countermeasure", "blur"]):
            axis.plot(line["confidence"], line["suspect_id_accuracy"], marker="o", markersize=3, linewidth=1,
                      label=" ".join(v for v in (countermeasure, blur) if v))
        axis.set_title(f"{model} · {attack}", fontsize=9)
        axis.set_xlabel("confidence (1 = guessing)", fontsize=8)
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_ylim(0, 1.02)
        axis.tick_params(labelsize=7)
        legend_below(axis)
    axes[0][0].set_ylabel("identifications that were the target", fontsize=8)
    return save(figure, out_dir, "confidence_accuracy")
