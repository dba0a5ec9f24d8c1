"""A study's settings: defaults from the paper, validated in one place, stored with the study."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from mi_harness.answers import skill_measured_on_gold, skilled_definition


class SettingsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class StudySettings:
    runs: int = 3
    """The paper ran each batch three times with the same images."""
    target_share: float = 0.8
    """Share of lineups that contain the person the attack targeted (80% in the paper)."""
    answers_per_item: int = 5
    """Answers each item collects in each run."""
    hit_size: int = 10
    hit_minutes: int = 60
    """A HIT's unanswered lineups return to the pool this long after it was handed out."""
    allow_absent: bool = True
    """Offer "not in this lineup" beside the five faces."""
    multiple_runs_per_worker: bool = False
    gold_items: int = 0
    """Lineups whose probe is a real photo of someone in the lineup, to measure workers independently."""
    gold_per_hit: int = 1
    skilled_min_tasks: int = 5
    skilled_min_accuracy: float = 0.75
    seed: int = 0

    FIXED_AT_CREATION = ("runs", "target_share", "gold_items", "seed")
    """These decide the lineups, which every run must share; the rest may change while a study runs."""

    @classmethod
    def from_mapping(cls, data: dict, base: StudySettings | None = None, creating: bool = True) -> StudySettings:
        """Settings from JSON or a form; every unknown key and bad value is reported at once."""
        current = asdict(base or cls())
        problems = []
        types = {f.name: f.type for f in fields(cls)}
        for key, raw in data.items():
            if key not in types:
                problems.append(f"unknown setting {key!r} (known: {', '.join(types)})")
                continue
            try:
                value = _parse(raw, types[key])
                if not creating and key in cls.FIXED_AT_CREATION and value != current[key]:
                    problems.append(f"{key} decides the lineups and cannot change after the study is created")
                    continue
                current[key] = value
            except (TypeError, ValueError):
                problems.append(f"{key} must be {'true or false' if types[key] == 'bool' else 'a ' + types[key]}, "
                                f"got {raw!r}")
        settings = cls(**current)
        problems += settings.problems()
        if problems:
            raise SettingsError(problems)
        return settings

    def problems(self) -> list[str]:
        found = []
        for name, low, high in (("runs", 1, 20), ("answers_per_item", 1, 10_000), ("hit_size", 1, 1000),
                                ("hit_minutes", 1, 7 * 24 * 60), ("gold_items", 0, 10_000), ("gold_per_hit", 0, 100),
                                ("skilled_min_tasks", 1, 10_000)):
            if not low <= getattr(self, name) <= high:
                found.append(f"{name} must be between {low} and {high}, got {getattr(self, name)}")
        for name in ("target_share", "skilled_min_accuracy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                found.append(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        return found

    def as_dict(self) -> dict:
        return asdict(self)

    def skilled_definition(self, has_gold: bool) -> str:
        return skilled_definition(self.skilled_min_tasks, self.skilled_min_accuracy,
                                  skill_measured_on_gold(has_gold, self.gold_per_hit))


def _parse(raw, kind: str):
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "on", "1", "yes", "false", "off", "0", "no", ""):
            return raw.lower() in ("true", "on", "1", "yes")
        raise ValueError(raw)
    if isinstance(raw, bool):
        raise ValueError(raw)
    if kind == "int":
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError(raw)
        return int(raw)
    return float(raw)
