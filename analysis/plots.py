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


def accuracy_per_model(by_run: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Like the paper's survey figure: accuracy per model, for all and for skilled workers, one bar per run,
    with the interval as error bars and the random-face chance level as a line."""
    figure, axes = plt.subplots(1, len(by_run), figsize=(5 * len(by_run), 3.6), sharey=True, squeeze=False)
    for axis, (who, table) in zip(axes[0], by_run.items()):
        axis.set_title(f"{who} workers")
        if table.empty:
            axis.text(0.5, 0.5, "no answers", ha="center", va="center", transform=axis.transAxes)
            continue
        models = sorted(table["model"].unique())
        runs = sorted(table["run"].unique())
        width = 0.8 / len(runs)
        for k, run in enumerate(runs):
            rows = table[table["run"] == run].set_index("model").reindex(models)
            x = [m + k * width - 0.4 + width / 2 for m in range(len(models))]
            axis.bar(x, rows["accuracy"], width, label=f"run {run}",
                     yerr=[rows["accuracy"] - rows["ci_low"], rows["ci_high"] - rows["accuracy"]], capsize=3)
        chance = table["chance_random_face"].mean()
        axis.axhline(chance, color="grey", linestyle=":", label=f"random face ({chance:.0%})")
        axis.set_xticks(range(len(models)), models)
        axis.set_ylim(0, 1)
        axis.set_ylabel("identification accuracy")
        axis.legend(fontsize=8)
    return save(figure, out_dir, "accuracy_per_model")


def accuracy_against_rounding(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Accuracy against the rounding level r of round:r (the unprotected model at the left), per model. Every
    series shares one axis of levels, so a level screening emptied for one model does not shift the others."""
    series = {}
    for (model, attack), rows in table.groupby(["model", "attack"]):
        levels = []
        for _, row in rows.iterrows():
            match = ROUNDING.match(row["countermeasure"])
            if row["countermeasure"] == "none" or match:
                levels.append((float(match.group(1)) if match else 0.0, row))
        if len(levels) >= 2:
            series[(model, attack)] = sorted(levels, key=lambda pair: pair[0])
    if not series:
        return []
    every_level = sorted({level for levels in series.values() for level, _ in levels})
    position = {level: k for k, level in enumerate(every_level)}
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    for (model, attack), levels in series.items():
        y = [r["accuracy"] for _, r in levels]
        axis.errorbar([position[level] for level, _ in levels], y,
                      yerr=[[r["accuracy"] - r["ci_low"] for _, r in levels],
                            [r["ci_high"] - r["accuracy"] for _, r in levels]],
                      marker="o", capsize=3, label=f"{model} ({attack})")
    axis.set_xticks(list(position.values()), ["none" if level == 0 else f"{level:g}" for level in position])
    axis.set_xlabel("confidences rounded to")
    axis.set_ylabel("identification accuracy")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8)
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
    """Each group's hit rate in the lineups (with its interval) against the deep face judge's hit rate on the same
    target-present lineups (or, without it, the eigenface judge's top-1 among the 40 subjects): points above the
    diagonal are groups people recognise more often than a face recogniser would."""
    deep = "deep_hit_rate" in table and table["deep_hit_rate"].notna().any()
    x, x_label = (("deep_hit_rate", "deep face judge: hit rate on the same lineups") if deep else
                  ("top1_eigen", "eigenface judge: top-1 among 40 subjects"))
    rows = table.dropna(subset=["hit_rate", x]) if "hit_rate" in table and x in table else table.iloc[0:0]
    if rows.empty:
        return []
    figure, axis = plt.subplots(figsize=(5, 4.2))
    for _, row in rows.iterrows():
        label = " ".join(str(row[k]) for k in ("model", "attack", "countermeasure", "blur") if row[k])
        axis.errorbar(row[x], row["hit_rate"], yerr=[[row["hit_rate"] - row["hit_ci_low"]],
                                                     [row["hit_ci_high"] - row["hit_rate"]]],
                      marker="o", capsize=3, linestyle="none", label=label)
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.axhline(0.2, color="grey", linestyle="--", linewidth=1, label="random face (20%)")
    axis.set_xlim(-0.02, 1.02)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel(x_label)
    axis.set_ylabel("people: hit rate in target-present lineups")
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return save(figure, out_dir, "people_against_machine")
