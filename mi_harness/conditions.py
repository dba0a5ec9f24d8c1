"""What makes two reconstructions the same condition for people: one owner for the grouping every stage uses."""
from __future__ import annotations

CONDITION = ("model", "attack", "countermeasure", "blur")
"""The columns a condition is made of. ``blur`` is not an item field: it lives in a deblurring item's params."""


def blur_of(params: dict | None) -> str:
    """The blur of a deblurring item ("gaussian:8"), or "" for every other item."""
    return str((params or {}).get("blur") or "")
