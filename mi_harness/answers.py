"""The answer-row schema and the skilled-worker rule: one owner for both, read by the survey's export and the analysis.

The export's rows are the interface between the survey and the analysis (DESIGN.md); the skilled rule decides which
workers the paper's "skilled" tables keep, so the survey's worker page and the analysis must apply the same one.
"""
from __future__ import annotations

import re

COLUMNS = ("study", "run", "worker", "hit", "item", "subject", "model", "attack", "countermeasure", "blur", "gold",
           "control", "control_of", "target_present", "target_position", "photo", "photo_role", "filler_policy",
           "choice", "correct", "confidence", "confidence_scale", "skilled", "response_ms", "shown_at",
           "answered_at")
"""The export's columns, in order. Places are numbered 1-5 from the left as the worker saw them; ``choice`` is a
place or ``absent``; ``blur`` is a deblurring item's blur ("gaussian:8") or empty. ``control``: a mock-witness
item, whose probe tells nothing of the target, showing the lineup of item ``control_of`` (its model, attack,
countermeasure, blur, target and places are that item's): what is chosen there measures the lineup, not the attack.
``photo`` and ``photo_role``: the target's photo in the lineup and its role in the model's split (train: the model
learned it; validation), empty in target-absent lineups. ``filler_policy``: the study's (random, similar, matched).
``confidence``: how sure the worker said they were, 1 to ``confidence_scale`` (empty, and a scale of 0, when the
study asked nothing)."""

ADDED_COLUMNS = {"control": False, "control_of": "", "photo": "", "photo_role": "", "filler_policy": "random",
                 "confidence": None, "confidence_scale": 0}
"""The columns issue 12 added, with what they mean for answers exported before them: no controls, photo not
recorded, random fillers (the only policy there was), no confidence asked."""

FLAGS = ("gold", "control", "target_present", "correct", "skilled")
"""The columns that hold true/false."""

ABSENT_CHOICE = "absent"
"""What ``choice`` says when the worker answered "not in this lineup"."""


def skill_measured_on_gold(has_gold: bool, gold_per_hit: int) -> bool:
    """Skill is measured on gold items when the study has them and shows them; else on held-out answers."""
    return bool(has_gold) and gold_per_hit > 0


def measures_skill(position: int, gold: bool, on_gold: bool, control: bool = False) -> bool:
    """Whether a worker's answer is evidence of their skill. ``position`` counts the worker's answers other than
    control items from 0 in the order they gave them (answer id; the export's row order). A control (mock-witness)
    answer never is: its probe tells nothing of the target, so being "right" there is luck.

    With gold items, the gold answers measure skill and every reconstruction answer can be reported. Without them
    skill must be measured on answers other than those reported, or the skilled subset is chosen for the very
    answers it is then credited with (500 workers answering at chance would give a "skilled" subset far above
    chance). So the worker's 1st, 3rd, 5th... answers measure skill and only the 2nd, 4th, 6th... are reported
    for skilled workers: the two halves are interleaved, so both see the same mix of HITs, runs and items."""
    if control:
        return False
    return bool(gold) if on_gold else position % 2 == 0


def skill_evidence(golds, corrects, on_gold: bool, controls=None) -> tuple[int, int]:
    """(answers measured, of them right) for one worker's answers, given in the order they were answered
    (``controls``: which of them are control items, none if not given)."""
    measured = right = position = 0
    for gold, correct, control in zip(golds, corrects, controls if controls is not None else [False] * len(golds)):
        if measures_skill(position, gold, on_gold, bool(control)):
            measured += 1
            right += bool(correct)
        position += not control
    return measured, right


def is_skilled(tasks: int, measured: int, right: int, min_tasks: int, min_accuracy: float) -> bool:
    """The paper's rule: at least ``min_tasks`` answered lineups (all runs) and accuracy of at least
    ``min_accuracy`` on the answers skill is measured on (``measured`` of them, ``right`` correct)."""
    return bool(tasks >= min_tasks and measured > 0 and right / measured >= min_accuracy)


def skilled_definition(min_tasks: int, min_accuracy: float, on_gold: bool) -> str:
    """The rule in words, recorded with the study and printed in the report."""
    measured_on = ("gold items" if on_gold else
                   "every other answer of the worker (the 1st, 3rd, 5th...), and only their other answers "
                   "(the 2nd, 4th...) are reported for skilled workers, so that the skilled figures are not "
                   "measured on the answers that chose the workers")
    return (f"skilled: at least {min_tasks} completed tasks (answered lineups, all runs) and accuracy of at least "
            f"{min_accuracy:.0%} measured on {measured_on}")


SIMULATED_WORKER = re.compile(r"^bot\d*-\d+-\d{3,}$")
"""The worker ids the simulated panel gives its bots (``survey_app.simulate.personas``: prefix, seed, number, as in
``bot-0-001`` or the demo's ``bot2-7001-014``): how a report knows, and says, that its answers are not people's."""


def simulated_worker_id(prefix: str, seed: int, number: int) -> str:
    """A bot's worker id (``bot-0-001``); refuses a prefix the report would not recognise as the simulated panel."""
    worker = f"{prefix}-{seed}-{number:03d}"
    if not SIMULATED_WORKER.match(worker):
        raise ValueError(f"simulated workers' ids must match {SIMULATED_WORKER.pattern}, and {worker!r} does not: "
                         "use the prefix bot or botN")
    return worker
