"""The two lifestyle surveys of the paper's tree experiments, cleaned into categorical tables.

Every column becomes strings with a fixed order of values (ordered answers keep their natural order, so a tree
can split them by threshold); a row with any missing answer among the columns used is dropped, as the paper's
"complete responses" were. The files are found by an option, ``$MI_TREES_DATA`` or ``../shared/data``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


class SurveyError(ValueError):
    pass


@dataclass
class Survey:
    name: str
    frame: pd.DataFrame  # one row per respondent, every column a string from ``values``
    features: list[str]  # the model's inputs, the sensitive one among them
    target: str
    sensitive: str
    positive: str  # the sensitive value whose precision and recall are reported
    values: dict[str, list[str]] = field(default_factory=dict)  # each column's values, in order
    note: str = ""
    _codes: dict = field(default_factory=dict, repr=False, compare=False)

    def codes(self, columns: list[str] | None = None) -> np.ndarray:
        """The columns as integer codes (the index of each value in ``values``), worked out once per column
        set: the experiments ask for them for every tree."""
        key = tuple(columns or self.features)
        if key not in self._codes:
            self._codes[key] = self.frame[list(key)].apply(
                lambda c: c.map({v: k for k, v in enumerate(self.values[c.name])})).to_numpy(dtype=int)
        return self._codes[key]


STEAK_COLUMNS = {
    "Do you ever smoke cigarettes?": "smoke",
    "Do you ever drink alcohol?": "alcohol",
    "Do you ever gamble?": "gamble",
    "Have you ever been skydiving?": "skydiving",
    "Do you ever drive above the speed limit?": "speeding",
    "Have you ever cheated on your significant other?": "cheated",
    "How do you like your steak prepared?": "steak",
    "Gender": "gender",
    "Age": "age",
    "Household Income": "income",
    "Education": "education",
    "Location (Census Region)": "region",
}
STEAK_ORDER = {
    "steak": ["Rare", "Medium rare", "Medium", "Medium Well", "Well"],
    "age": ["18-29", "30-44", "45-60", "> 60"],
    "income": ["$0 - $24,999", "$25,000 - $49,999", "$50,000 - $99,999", "$100,000 - $149,999", "$150,000+"],
    "education": ["Less than high school degree", "High school degree", "Some college or Associate degree",
                  "Bachelor degree", "Graduate degree"],
}

GSS_COLUMNS = ["year", "marital", "divorce", "childs", "age", "educ", "sex", "race", "relig", "xmovie", "pornlaw",
               "hapmar"]
GSS_MISSING = {"childs": {"9"}, "age": {"99"}, "educ": {"98", "99"}, "divorce": {"noanswer"},
               "relig": {"noanswer", "dontknow"}, "pornlaw": {"noanswer", "dontknow"}}
GSS_NUMERIC = ("year", "childs", "age", "educ")


def data_root(option: str | os.PathLike | None = None) -> Path:
    for candidate in (option, os.environ.get("MI_TREES_DATA"), Path(__file__).resolve().parents[3] / "shared" / "data",
                      Path("../shared/data")):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    raise SurveyError("no survey data folder: pass --data DIR (holding steak_survey/ and gss_mehnaz_extract/) "
                      "or set MI_TREES_DATA")


def _ordered(series: pd.Series, order: list[str] | None, numeric: bool = False) -> list[str]:
    found = set(series)
    if order:
        unknown = sorted(found - set(order))
        if unknown:
            raise SurveyError(f"column {series.name!r} has values the survey does not have: {unknown[:5]}")
        return [v for v in order if v in found]
    return sorted(found, key=int) if numeric else sorted(found)


def read_table(path: str | os.PathLike, file_name: str, what: str, columns, encoding: str = "utf-8") -> pd.DataFrame:
    """A CSV (or the folder holding ``file_name``) as strings, refused with a message naming the first column of
    ``columns`` it lacks."""
    path = Path(path)
    if path.is_dir():
        path = path / file_name
    if not path.is_file():
        raise SurveyError(f"no {what} CSV at {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SurveyError(f"{path} is not the {what} data ({exc})") from None
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise SurveyError(f"{path} is not the {what} data: no column {missing[0]!r}")
    raw.attrs["path"] = path
    return raw


def load_steak(path: str | os.PathLike) -> Survey:
    """FiveThirtyEight's steak survey: the model predicts how a respondent likes steak; the sensitive answer is
    whether they ever cheated on their significant other. Line 2 of the CSV is a SurveyMonkey sub-header."""
    raw = read_table(path, "steak-risk-survey.csv", "FiveThirtyEight steak survey", ["RespondentID", *STEAK_COLUMNS])
    lottery = raw.columns[1]
    raw = raw[raw["RespondentID"].str.strip() != ""]  # the sub-header row
    frame = raw[[lottery, *STEAK_COLUMNS]].rename(columns={lottery: "lottery", **STEAK_COLUMNS})
    frame = frame[(frame != "").all(axis=1)].reset_index(drop=True)
    if frame.empty:
        raise SurveyError(f"{raw.attrs['path']} has no complete response")
    values = {c: _ordered(frame[c], STEAK_ORDER.get(c)) for c in frame.columns}
    features = [c for c in frame.columns if c != "steak"]
    return Survey("fivethirtyeight", frame, features, "steak", "cheated", "Yes", values,
                  f"FiveThirtyEight steak survey, {len(frame)} complete responses of {len(raw)}")


def load_gss(path: str | os.PathLike) -> Survey:
    """The GSS extract: the model predicts marital happiness (hapmar); the sensitive answer is having watched an
    X-rated movie in the last year (xmovie). Not the paper's 51,020-row file (see the note)."""
    raw = read_table(path, "GSS_15235.csv", "GSS extract", GSS_COLUMNS)
    path = raw.attrs["path"]
    frame = raw[GSS_COLUMNS].apply(lambda c: c.str.strip())
    keep = pd.Series(True, index=frame.index)
    for column, codes in GSS_MISSING.items():
        keep &= ~frame[column].isin(codes)
    frame = frame[keep & (frame != "").all(axis=1)].reset_index(drop=True)
    for column in GSS_NUMERIC:
        if not frame[column].str.fullmatch(r"\d+").all():
            raise SurveyError(f"{path}: column {column!r} should hold whole numbers")
    values = {c: _ordered(frame[c], ["nottoohappy", "prettyhappy", "veryhappy"] if c == "hapmar" else None,
                          numeric=c in GSS_NUMERIC) for c in frame.columns}
    features = [c for c in frame.columns if c != "hapmar"]
    return Survey("gss", frame, features, "hapmar", "xmovie", "x_yes", values,
                  f"GSS extract {path.name} (Mehnaz et al.), {len(frame)} of {len(raw)} rows after dropping missing "
                  "codes; not the paper's 51,020-row GSS file, so its numbers are not the paper's")


LOADERS = {"fivethirtyeight": ("steak_survey", load_steak), "gss": ("gss_mehnaz_extract", load_gss)}


def load_survey(name: str, root: str | os.PathLike | None = None) -> Survey:
    if name not in LOADERS:
        raise SurveyError(f"unknown survey {name!r} (surveys: {', '.join(LOADERS)})")
    folder, loader = LOADERS[name]
    return loader(data_root(root) / folder)


def with_sensitive(survey: Survey, sensitive: str) -> Survey:
    """The same survey with another feature as the sensitive one (positive value: its last value)."""
    if sensitive not in survey.features:
        raise SurveyError(f"unknown sensitive feature {sensitive!r} for {survey.name} "
                          f"(features: {', '.join(survey.features)})")
    return Survey(survey.name, survey.frame, survey.features, survey.target, sensitive,
                  survey.values[sensitive][-1], survey.values, survey.note)
