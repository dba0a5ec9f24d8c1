"""The warfarin attack the paper builds on (Fredrikson et al., USENIX Security 2014): from a linear dosing model,
a patient's demographics and their stable dose, infer their VKORC1 genotype.

The model is the IWPC pharmacogenetic algorithm's form: a linear regression of the square root of the weekly
dose on age (decades), height, weight, race, VKORC1 -1639 G>A, CYP2C9, enzyme inducers and amiodarone. The
estimator scores each candidate genotype v by a Gaussian error model, N(sqrt(dose) - f(x_K, v, u); sigma^2) with
sigma the model's residual spread on its training rows, times the marginal priors of v and of any other unknown
feature u (CYP2C9, when the attacker does not know it), summed over u.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from .trees.estimators import scores
from .trees.surveys import data_root, read_table

VKORC1 = "VKORC1 genotype:   -1639 G>A (3673); chr16:31015190; rs9923231; C/T"
GENOTYPES = ["G/G", "A/G", "A/A"]
CYP2C9 = ["*1/*1", "*1/*2", "*1/*3", "*2/*2", "*2/*3", "*3/*3"]
RACES = ["White", "Asian", "Black or African American", "Unknown"]
INDUCERS = ["Carbamazepine (Tegretol)", "Phenytoin (Dilantin)", "Rifampin or Rifampicin"]
NEEDED = ["Race (OMB)", "Age", "Height (cm)", "Weight (kg)", "Amiodarone (Cordarone)", *INDUCERS, "Cyp2C9 genotypes",
          VKORC1, "Therapeutic Dose of Warfarin"]


@dataclass
class Patients:
    frame: pd.DataFrame  # age_decades, height, weight, race, inducer, amiodarone, cyp2c9, vkorc1, dose
    note: str


def load_patients(path: str | os.PathLike | None = None) -> Patients:
    """The IWPC data (PharmGKB, 6,922 patients): those with a stable dose, a VKORC1 -1639 call, one of the six
    common CYP2C9 genotypes, age, height and weight. A missing medication is counted as not taken, as the IWPC
    algorithm does."""
    raw = read_table(path or data_root() / "iwpc_warfarin" / "pharmgkb_6922", "iwpc_data.csv", "IWPC warfarin",
                     NEEDED, encoding="utf-8-sig")
    keep = (raw[VKORC1].isin(GENOTYPES) & raw["Cyp2C9 genotypes"].isin(CYP2C9) & raw["Age"].str.contains("-|\\+")
            & (raw["Height (cm)"] != "NA") & (raw["Weight (kg)"] != "NA") & (raw["Height (cm)"] != "")
            & (raw["Weight (kg)"] != "") & ~raw["Therapeutic Dose of Warfarin"].isin(["", "NA"]))
    rows = raw[keep]
    taken = lambda column: (rows[column] == "1").astype(int)  # noqa: E731
    frame = pd.DataFrame({
        "age_decades": rows["Age"].str.extract(r"^(\d+)")[0].astype(int) // 10,
        "height": rows["Height (cm)"].astype(float), "weight": rows["Weight (kg)"].astype(float),
        "race": rows["Race (OMB)"].where(rows["Race (OMB)"].isin(RACES), "Unknown"),
        "inducer": np.maximum.reduce([taken(c) for c in INDUCERS]), "amiodarone": taken("Amiodarone (Cordarone)"),
        "cyp2c9": rows["Cyp2C9 genotypes"], "vkorc1": rows[VKORC1],
        "dose": rows["Therapeutic Dose of Warfarin"].astype(float)}).reset_index(drop=True)
    return Patients(frame, f"IWPC warfarin (PharmGKB release of 6,922 patients): {len(frame)} with a stable dose, "
                           "VKORC1 -1639, a common CYP2C9 genotype, age, height and weight")


def design(frame: pd.DataFrame) -> np.ndarray:
    """The IWPC algorithm's covariates: numbers as they are, categories one-hot against the first level."""
    parts = [frame[["age_decades", "height", "weight", "inducer", "amiodarone"]].to_numpy(float)]
    for column, levels in (("race", RACES), ("cyp2c9", CYP2C9), ("vkorc1", GENOTYPES)):
        parts.append(np.column_stack([(frame[column] == level).to_numpy(float) for level in levels[1:]]))
    return np.hstack(parts)


class DoseModel:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.regression = LinearRegression().fit(design(frame), np.sqrt(frame["dose"]))
        self.sigma = float(np.std(np.sqrt(frame["dose"]) - self.predict(frame)))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """sqrt(weekly dose in mg)."""
        return self.regression.predict(design(frame))


def _priors(column: pd.Series, levels: list[str]) -> np.ndarray:
    counts = column.value_counts().reindex(levels, fill_value=0).to_numpy(float) + 1.0
    return counts / counts.sum()


def fredrikson2014(model: DoseModel, people: pd.DataFrame, vkorc1_prior: np.ndarray,
                   cyp2c9_prior: np.ndarray | None = None) -> np.ndarray:
    """The index (in GENOTYPES) of each person's most likely VKORC1 genotype given everything in ``people`` but
    their genotype(s), and their dose. With ``cyp2c9_prior`` the attacker does not know CYP2C9 either."""
    target = np.sqrt(people["dose"].to_numpy(float))
    unknown = list(enumerate(CYP2C9)) if cyp2c9_prior is not None else [(None, None)]
    scores_ = np.zeros((len(GENOTYPES), len(people)))
    for v, genotype in enumerate(GENOTYPES):
        for u, cyp in unknown:
            candidate = people.assign(vkorc1=genotype, **({"cyp2c9": cyp} if cyp else {}))
            likelihood = norm.pdf(target - model.predict(candidate), scale=model.sigma)
            scores_[v] += likelihood * vkorc1_prior[v] * (cyp2c9_prior[u] if cyp else 1.0)
    return scores_.argmax(axis=0)


def ideal_inputs(frame: pd.DataFrame, know_cyp2c9: bool) -> np.ndarray:
    """What the "ideal" baseline classifier sees: exactly what the attacker knows (the IWPC covariates but VKORC1,
    and the dose), so CYP2C9 only when the attacker knows it; otherwise it would be a better-informed attacker."""
    columns = design(frame.assign(vkorc1=GENOTYPES[0]))[:, : -(len(GENOTYPES) - 1)]
    if not know_cyp2c9:
        start = 5 + len(RACES) - 1  # after the numbers and race, the CYP2C9 levels (design's order)
        columns = np.delete(columns, np.s_[start:start + len(CYP2C9) - 1], axis=1)
    return np.column_stack([columns, np.sqrt(frame["dose"].to_numpy(float))])


def run(patients: Patients, repeats: int = 10, know_cyp2c9: bool = True, seed: int = 0) -> pd.DataFrame:
    """Accuracy of inferring VKORC1 on training and held-out patients (models on random halves), against the
    most common genotype and an "ideal" classifier trained on the same half to predict it from everything else."""
    frame = patients.frame
    results = []
    for k in range(repeats):
        train, test = train_test_split(np.arange(len(frame)), train_size=0.5, random_state=seed + k,
                                       stratify=frame["vkorc1"])
        model = DoseModel(frame.iloc[train])
        prior = _priors(frame["vkorc1"].iloc[train], GENOTYPES)
        cyp_prior = None if know_cyp2c9 else _priors(frame["cyp2c9"].iloc[train], CYP2C9)
        ideal = DecisionTreeClassifier(min_samples_leaf=20, random_state=seed + k).fit(
            ideal_inputs(frame.iloc[train], know_cyp2c9), frame["vkorc1"].iloc[train].map(GENOTYPES.index))
        for population, index in (("training", train), ("test", test)):
            people = frame.iloc[index]
            truth = people["vkorc1"].map(GENOTYPES.index).to_numpy()
            guesses = {"fredrikson2014": fredrikson2014(model, people, prior, cyp_prior),
                       "ideal": ideal.predict(ideal_inputs(people, know_cyp2c9)),
                       "most-common": np.full(len(people), prior.argmax())}
            for attack, guess in guesses.items():
                results.append({"population": population, "attack": attack,
                                "accuracy": scores(truth, guess, GENOTYPES.index("A/A"))["accuracy"],
                                "model_rmse_sqrt_dose": model.sigma})
    table = pd.DataFrame(results).groupby(["population", "attack"], sort=False).mean().reset_index()
    table.insert(0, "knows_cyp2c9", know_cyp2c9)
    table["repeats"] = repeats
    return table
