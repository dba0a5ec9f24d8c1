"""A synthetic study as the analysis reads one: answers with known worker and item effects, target-present and
target-absent lineups, the target's photo role, confidence ratings and control (mock-witness) items, in the export's
columns. For the analysis's tests of what a simulated panel over HTTP cannot control (known truth)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from analysis.load import COLUMNS, skilled_workers, tidy

CONDITIONS = (("softmax", "mi-face", "none", "", 1.5), ("softmax", "mi-face", "round:0.01", "", 0.2),
              ("mlp", "mi-face", "none", "", 0.8), ("mlp", "mi-face", "round:0.01", "", -0.6),
              ("softmax", "deblur", "none", "gaussian:8", 1.0))
"""model, attack, countermeasure, blur, log-odds of a right answer for an average worker on an average item."""


def synthetic_study(items=12, answers_per_item=6, workers=30, sd_worker=0.8, sd_item=1.0, controls=2,
                    control_target_share=0.2, confidence=True, seed=0, conditions=CONDITIONS) -> pd.DataFrame:
    """``controls`` control items per condition; on them a worker picks the target with probability
    ``control_target_share`` and otherwise another face or "absent"."""
    rng = np.random.default_rng(seed)
    worker_effect = rng.normal(0, sd_worker, workers)
    rows = []
    hit = 0
    for c, (model, attack, countermeasure, blur, eta) in enumerate(conditions):
        for k in range(items + controls):
            control = k >= items
            item = f"c{c}-{'ctl' if control else 'it'}{k}"
            present = True if control else rng.random() < 0.8
            target = int(rng.integers(1, 6)) if present else None
            role = ("train" if rng.random() < 0.5 else "validation") if present else ""
            item_effect = rng.normal(0, sd_item)
            for w in rng.choice(workers, answers_per_item, replace=False):
                if control:
                    picked_target = rng.random() < control_target_share
                    others = [str(p) for p in range(1, 6) if p != target] + ["absent"]
                    choice = str(target) if picked_target else others[rng.integers(0, len(others))]
                else:
                    right = rng.random() < expit(eta + worker_effect[w] + item_effect)
                    wrong = [str(p) for p in range(1, 6) if p != target] + ([] if not present else ["absent"])
                    choice = (str(target) if present else "absent") if right else wrong[rng.integers(0, len(wrong))]
                correct = choice == (str(target) if present else "absent")
                rating = int(np.clip(round(2.5 + 1.5 * correct + rng.normal(0, 1)), 1, 5)) if confidence else None
                hit += 1
                rows.append({"study": "synthetic", "run": 1 + hit % 3, "worker": f"w{w:03d}", "hit": hit // 10,
                             "item": item, "subject": f"s{k + 1}", "model": model, "attack": attack,
                             "countermeasure": countermeasure, "blur": blur, "gold": False, "control": control,
                             "control_of": f"c{c}-it{k - items}" if control else "", "target_present": present,
                             "target_position": target, "photo": f"s{k + 1}/1" if present else "",
                             "photo_role": role, "filler_policy": "matched", "choice": choice, "correct": correct,
                             "confidence": rating, "confidence_scale": 5 if confidence else 0, "skilled": False,
                             "response_ms": 2000, "shown_at": None, "answered_at": None})
    frame = pd.DataFrame(rows).sample(frac=1, random_state=seed).reset_index(drop=True)  # answers interleaved
    skilled = skilled_workers(frame.assign(worker_key=frame["worker"]), {"skilled_min_tasks": 5,
                                                                          "skilled_min_accuracy": 0.6})
    return tidy(frame.assign(skilled=frame["worker"].map(skilled))[list(COLUMNS)])
