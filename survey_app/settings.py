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
    filler_policy: str = "random"
    """Who stands beside the target (survey_app/fillers.py): random (the paper's), similar (near in a face
    descriptor's space, never a near-duplicate) or matched (the target's values of the ``matched_on`` attributes)."""
    matched_on: str = ""
    """The gallery attribute columns the matched policy matches on, comma-separated (e.g. ``sex``)."""
    photo_role: str = "validation"
    """Which of the target's photos a lineup shows: validation (one the model never saw, as people meet a
    stranger's new photo), train (one it learned) or either (balanced within every condition)."""
    control_items: int = 0
    """Mock-witness items: copies of target-present lineups whose probe carries no information about the target,
    to measure how often the target is picked for how the lineup looks alone (functional size, Tredoux's E)."""
    control_probe: str = "other"
    """What a control item shows: other (another subject's reconstruction of the same condition, one not in the
    lineup) or silhouette (a neutral grey head-and-shoulders shape)."""
    confidence_scale: int = 0
    """Points of the confidence rating asked after each choice (1 = guessing ... N = certain); 0: not asked."""
    consent_text: str = ""
    """What the consent page says the study is and records (plain text; blank lines start paragraphs); empty: the
    default text, which describes the lineup task."""
    researcher_contact: str = ""
    """Who participants write to with questions (a name and an email address), shown on the consent page."""
    ethics_approval: str = ""
    """The ethics board and approval number, shown on the consent page."""
    pay: str = ""
    """What a finished batch pays (e.g. "£1.20, about 8 minutes"), shown on the consent page."""
    completion_url: str = ""
    """Where a worker who came from Prolific goes when their batch is finished (the study's completion URL, with its
    completion code); empty: they are shown their code to paste."""

    FIXED_AT_CREATION = ("runs", "target_share", "gold_items", "seed", "filler_policy", "matched_on", "photo_role",
                         "control_items", "control_probe", "confidence_scale")
    """These decide the lineups, which every run must share, or what an answer records (the confidence scale, so
    that every answer of a study has the same); the rest may change while a study runs."""
    TEXT_LIMITS = {"consent_text": 4000, "completion_url": 500}
    """Text settings longer than the usual 200 characters."""
    CHOICES = {"filler_policy": ("random", "similar", "matched"), "photo_role": ("validation", "train", "either"),
               "control_probe": ("other", "silhouette")}

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
                value = _parse(raw, types[key], cls.TEXT_LIMITS.get(key, 200))
                if not creating and key in cls.FIXED_AT_CREATION and value != current[key]:
                    what = "what every answer records" if key == "confidence_scale" else "the lineups"
                    problems.append(f"{key} decides {what} and cannot change after the study is created")
                    continue
                current[key] = value
            except (TypeError, ValueError):
                problems.append(f"{key} must be {_KINDS[types[key]]}, got {raw!r}")
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
        for name, allowed in self.CHOICES.items():
            if getattr(self, name) not in allowed:
                found.append(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not 0 <= self.control_items <= 10_000:
            found.append(f"control_items must be between 0 and 10000, got {self.control_items}")
        if self.confidence_scale != 0 and not 2 <= self.confidence_scale <= 11:
            found.append(f"confidence_scale must be 0 (not asked) or between 2 and 11 points, "
                         f"got {self.confidence_scale}")
        if self.completion_url and (not self.completion_url.startswith(("https://", "http://"))
                                    or any(c.isspace() for c in self.completion_url)):
            found.append(f"completion_url must be an http(s) address without spaces, got {self.completion_url!r}")
        if self.filler_policy == "matched" and not self.matched_columns:
            found.append("the matched filler policy needs matched_on: the attribute columns to match (e.g. sex)")
        if self.matched_on and self.filler_policy != "matched":
            found.append(f"matched_on is used by the matched filler policy only, not {self.filler_policy!r}")
        return found

    @property
    def matched_columns(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.matched_on.split(",") if c.strip())

    def as_dict(self) -> dict:
        return asdict(self)

    def skilled_definition(self, has_gold: bool) -> str:
        return skilled_definition(self.skilled_min_tasks, self.skilled_min_accuracy,
                                  skill_measured_on_gold(has_gold, self.gold_per_hit))


_KINDS = {"bool": "true or false", "int": "an int", "float": "a float", "str": "text of at most 200 characters "
                                                                              "(consent_text 4000, completion_url 500)"}


def _parse(raw, kind: str, limit: int = 200):
    if kind == "str":
        if not isinstance(raw, str) or len(raw) > limit:
            raise ValueError(raw)
        return raw.strip()
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
