"""A lifestyle survey as AttriGuard sees it: every respondent whose sensitive answer is known, with their other
answers as public data, and an unanswered question kept as its own value instead of dropping the respondent.

The tree experiments keep complete responses only (``surveys.py``); AttriGuard's "add" policy needs the gaps, which
is why this reads the same files again. What counts as unanswered: an empty cell in the steak survey (207 of the 539
respondents who answered the cheating question skipped at least one other question, mostly how they like their
steak, which people who do not eat steak skip, and their household income); GSS's missing codes in the extract
(``surveys.GSS_MISSING``: childs 9, age 99, educ 98/99, "noanswer"/"dontknow"), about 1% of its rows.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .surveys import (
    GSS_COLUMNS,
    GSS_MISSING,
    GSS_NUMERIC,
    LOADERS,
    STEAK_COLUMNS,
    STEAK_ORDER,
    SurveyError,
    data_root,
    read_table,
)

UNANSWERED = "(no answer)"
PAPER_SENSITIVE = {"fivethirtyeight": "cheated", "gss": "xmovie"}


@dataclass
class PublicAnswers:
    name: str
    columns: list[str]  # the public questions
    values: dict[str, list[str]]  # each question's answers in order, UNANSWERED last where someone skipped it
    codes: np.ndarray  # people x questions: the index of each person's answer in ``values``
    sensitive: str
    sensitive_values: list[str]
    truth: np.ndarray  # each person's sensitive answer (index in ``sensitive_values``)
    note: str

    @property
    def sizes(self) -> list[int]:
        return [len(self.values[c]) for c in self.columns]

    def answer_counts(self) -> np.ndarray:
        """Per question: how many of its codes are answers (they come first; UNANSWERED, if present, is last)."""
        return np.array([self.values[c].index(UNANSWERED) if UNANSWERED in self.values[c] else len(self.values[c])
                         for c in self.columns])


def _order(series: pd.Series, order: list[str] | None = None, numeric: bool = False) -> list[str]:
    found = set(series) - {UNANSWERED}
    if order:
        unknown = sorted(found - set(order))
        if unknown:
            raise SurveyError(f"column {series.name!r} has values the survey does not have: {unknown[:5]}")
        values = [v for v in order if v in found]
    else:
        values = sorted(found, key=int) if numeric else sorted(found)
    return values + ([UNANSWERED] if (series == UNANSWERED).any() else [])


def _steak(path) -> tuple[pd.DataFrame, dict, str]:
    raw = read_table(path, "steak-risk-survey.csv", "FiveThirtyEight steak survey", ["RespondentID", *STEAK_COLUMNS])
    lottery = raw.columns[1]
    raw = raw[raw["RespondentID"].str.strip() != ""]
    frame = raw[[lottery, *STEAK_COLUMNS]].rename(columns={lottery: "lottery", **STEAK_COLUMNS})
    frame = frame.mask(frame == "", UNANSWERED)
    values = {c: _order(frame[c], STEAK_ORDER.get(c)) for c in frame.columns}
    return frame.reset_index(drop=True), values, f"FiveThirtyEight steak survey, {len(raw)} respondents"


def _gss(path) -> tuple[pd.DataFrame, dict, str]:
    raw = read_table(path, "GSS_15235.csv", "GSS extract", GSS_COLUMNS)
    frame = raw[GSS_COLUMNS].apply(lambda c: c.str.strip())
    for column, codes in GSS_MISSING.items():
        frame[column] = frame[column].mask(frame[column].isin(codes), UNANSWERED)
    frame = frame.mask(frame == "", UNANSWERED)
    for column in GSS_NUMERIC:
        answers = frame[column][frame[column] != UNANSWERED]
        if not answers.str.fullmatch(r"\d+").all():
            raise SurveyError(f"{raw.attrs['path']}: column {column!r} should hold whole numbers")
    order = {"hapmar": ["nottoohappy", "prettyhappy", "veryhappy"]}
    values = {c: _order(frame[c], order.get(c), numeric=c in GSS_NUMERIC) for c in frame.columns}
    return frame, values, f"GSS extract {raw.attrs['path'].name} (Mehnaz et al.; not the paper's 51,020-row file), " \
                          f"{len(raw)} rows"


def load_public_answers(name: str, root: str | os.PathLike | None = None, sensitive: str | None = None
                        ) -> PublicAnswers:
    """The survey ``name`` with ``sensitive`` (default: the paper's) as the private answer; respondents who did not
    give it are left out (there is no truth to score an attacker against)."""
    if name not in LOADERS:
        raise SurveyError(f"unknown survey {name!r} (surveys: {', '.join(LOADERS)})")
    folder = data_root(root) / LOADERS[name][0]
    frame, values, source = (_steak if name == "fivethirtyeight" else _gss)(folder)
    sensitive = sensitive or PAPER_SENSITIVE[name]
    if sensitive not in frame.columns:
        raise SurveyError(f"unknown sensitive answer {sensitive!r} for {name} (answers: {', '.join(frame.columns)})")
    known = frame[sensitive] != UNANSWERED
    frame = frame[known].reset_index(drop=True)
    columns = [c for c in frame.columns if c != sensitive]
    values = {c: [v for v in values[c] if v in set(frame[c])] for c in frame.columns}
    sensitive_values = values.pop(sensitive)
    if len(sensitive_values) < 2:
        raise SurveyError(f"{sensitive!r} has a single answer among the respondents: nothing to infer")
    codes = np.column_stack([frame[c].map({v: k for k, v in enumerate(values[c])}).to_numpy(dtype=int)
                             for c in columns])
    truth = frame[sensitive].map({v: k for k, v in enumerate(sensitive_values)}).to_numpy(dtype=int)
    gaps = int((frame[columns] == UNANSWERED).any(axis=1).sum())
    note = (f"{source}: {len(frame)} respondents gave {sensitive!r}; {gaps} of them left at least one of the "
            f"{len(columns)} public questions unanswered ({UNANSWERED!r} is its own answer)")
    return PublicAnswers(name, columns, {c: values[c] for c in columns}, codes, sensitive, sensitive_values, truth,
                         note)
