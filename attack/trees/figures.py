"""The tree experiments' figures (matplotlib, PNG and SVG)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _save(figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    for path in paths:
        figure.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(figure)
    return paths


def depth_figure(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Like the paper's privacy-aware CART figure: model accuracy and the white-box attack's accuracy, precision
    and recall on training individuals, against the depth the sensitive feature was forced to."""
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    x = range(len(table))
    axis.plot(x, table["model_accuracy"], marker="o", label="model accuracy (held-out rows)")
    axis.plot(x, table["training_accuracy"], marker="s", label="white-box attack accuracy")
    axis.plot(x, table["training_precision"], marker="^", label="white-box attack precision")
    axis.plot(x, table["training_recall"], marker="v", label="white-box attack recall")
    axis.set_xticks(list(x), list(table["depth"]))
    axis.set_xlabel(f"depth of {table['sensitive'].iloc[0]!r} in the tree")
    axis.set_ylim(0, 1.02)
    axis.set_title(f"{table['survey'].iloc[0]}: {int(table['trees'].iloc[0])} trees per depth", fontsize=9)
    axis.legend(fontsize=7)
    return _save(figure, out_dir, "depth")


def attacks_figure(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Each attack's accuracy on training and on test individuals, the paper's figure as a cross."""
    figure, axis = plt.subplots(figsize=(6, 3.6))
    attacks = list(dict.fromkeys(table["attack"]))
    for k, population in enumerate(("training", "test")):
        rows = table[table["population"] == population].set_index("attack").reindex(attacks)
        x = [a + (k - 0.5) * 0.38 for a in range(len(attacks))]
        axis.bar(x, rows["accuracy_mean"], 0.38, yerr=rows["accuracy_std"], capsize=2, label=population)
    paper = table[table["population"] == "training"].set_index("attack").reindex(attacks)["paper_accuracy"]
    axis.scatter([a - 0.19 for a in range(len(attacks))], paper / 100, marker="x", color="black", zorder=3,
                 label="paper (training)")
    axis.set_xticks(range(len(attacks)), attacks, rotation=20, fontsize=8)
    axis.set_ylim(0, 1.02)
    axis.set_ylabel("accuracy at inferring the sensitive answer")
    axis.legend(fontsize=7)
    return _save(figure, out_dir, "attacks")
