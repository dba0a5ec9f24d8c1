"""An input refused for several reasons at once: every problem is named, so one run shows the whole list."""
from __future__ import annotations

from pathlib import Path

SHOWN = 20


class Problems(ValueError):
    """``problems`` lists every bad entry of the input at ``where``; the message shows the first 20."""

    kind = "input"

    def __init__(self, where: Path | str, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  - ".join(problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        super().__init__(f"invalid {self.kind} {where}:\n  - {shown}{more}")
