"""The answer-row schema and the skilled-worker rule: one owner for both, read by the survey's export and the analysis.

The export's rows are the interface between the survey and the analysis (DESIGN.md); the skilled rule decides which
workers the paper's "skilled" tables keep, so the survey's worker page and the analysis must apply the same one.
"""
from __future__ import annotations

COLUMNS = ("study", "run", "worker", "hit", "item", "subject", "model", "attack", "countermeasure", "blur", "gold",
           "target_present", "target_position", "choice", "correct", "skilled", "response_ms", "shown_at",
           "answered_at")
"""The export's columns, in order. Places are numbered 1-5 from the left as the worker saw them; ``choice`` is a
place or ``absent``; ``blur`` is a deblurring item's blur ("gaussian:8") or empty."""

FLAGS = ("gold", "target_present", "correct", "skilled")
"""The columns that hold true/false."""

ABSENT_CHOICE = "absent"
"""What ``choice`` says when the worker answered "not in this lineup"."""


def skill_measured_on_gold(has_gold: bool, gold_per_hit: int) -> bool:
    """Skill is measured on gold items when the study has them and shows them; else on all answers."""
    return bool(has_gold) and gold_per_hit > 0


def is_skilled(tasks: int, measured: int, right: int, min_tasks: int, min_accuracy: float) -> bool:
    """The paper's rule: at least ``min_tasks`` answered lineups (all runs) and accuracy of at least
    ``min_accuracy`` on the answers skill is measured on (``measured`` of them, ``right`` correct)."""
    return bool(tasks >= min_tasks and measured > 0 and right / measured >= min_accuracy)


def skilled_definition(min_tasks: int, min_accuracy: float, on_gold: bool) -> str:
    """The rule in words, recorded with the study and printed in the report."""
    return (f"skilled: at least {min_tasks} completed tasks (answered lineups, all runs) and accuracy of at least "
            f"{min_accuracy:.0%} measured on {'gold items' if on_gold else 'all answers'}")
