"""The `mi-harness` command line: one root whose subcommands load only when they run.

Each stage's commands live in its own package; this table is the one place that names them. Loading a command
imports only its module, so `mi-harness serve`, `db upgrade`, `study create` and `analyze` never import torch or
the attack package, and `mi-harness --help` imports none of them.
"""
from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module, attribute, one-line help)
    "train": ("attack.cli", "train", "Train the paper's face models (softmax, MLP, DAE), optionally with DP-SGD."),
    "attack": ("attack.cli", "attack", "Invert a model with MI-Face (white- or black-box, deblurring) into a bundle."),
    "fetch-faces": ("attack.cli", "fetch_faces_command", "Download and verify the AT&T faces."),
    "bundle": ("mi_harness.bundle_cli", "bundle", "Check a bundle, or convert reconstructions made elsewhere."),
    "evaluate": ("mi_harness.bundle_cli", "evaluate", "Machine judges (deep face recogniser, pixels, eigenfaces)."),
    "trees": ("attack.trees.cli", "trees", "The paper's decision-tree inversion on a lifestyle survey."),
    "warfarin": ("attack.trees.cli", "warfarin", "The 2014 warfarin attack on a linear dosing model."),
    "attriguard": ("attack.trees.attriguard_cli", "attriguard", "AttriGuard against attribute inference."),
    "db": ("survey_app.cli", "db_group", "Create or upgrade the survey's database."),
    "admin": ("survey_app.cli", "admin_group", "Manage the survey's administrators."),
    "study": ("survey_app.cli", "study_group", "Create, list, run and export lineup studies."),
    "serve": ("survey_app.cli", "serve", "Serve the survey (gunicorn)."),
    "simulate": ("survey_app.cli", "simulate", "Answer a study with the simulated panel (not people)."),
    "analyze": ("analysis.cli", "analyze", "Accuracy per model and countermeasure, plots and the report."),
    "plan": ("analysis.cli", "plan", "Power of a study design, by simulation; answers per item to aim for."),
    "demo": ("demo.cli", "demo", "The whole pipeline from nothing on the AT&T faces, with the simulated panel."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup)
def main() -> None:
    """Model inversion against face recognition, after Fredrikson, Jha and Ristenpart (CCS 2015), and the human
    lineup study that measures whether people recognise the reconstructions."""
