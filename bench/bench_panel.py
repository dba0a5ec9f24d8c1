"""The simulated panel's perception on a study's own lineups, beside the pixel and deep face judges (issue 9).

    .venv/bin/python bench/bench_panel.py --database sqlite:///runs/demo/survey.db [--study NAME] [--looks 20]
    .venv/bin/python bench/bench_panel.py --efficiency      # the perception's own efficiency against the ideal

For every condition (model x attack x countermeasure x blur) of the study, and for its gold items (real photos),
each lineup as stored in the survey database (the same images, in the same places, that workers see) is shown
``--looks`` times to attentive bots drawn from the panel's distribution of efficiency and criterion. Beside them:
the pixel judge's answer (Pearson correlation of the standardised probe with each face, argmax; it never says
"not in this lineup") and the deep face judge's (dlib's descriptor, nearest face; "absent" past its same-person
distance). The database is opened read-only. Results print as a Markdown table and are saved under bench/results/.
The bots are a model, not people: their column says what this observer recognises.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import random
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from mi_harness.conditions import blur_of
from survey_app.models import Image as StoredImage
from survey_app.models import Item, Lineup, LineupFace, Study
from survey_app.perception import PIPELINE_EFFICIENCY, Observer, judge
from survey_app.simulate import PROFILES, Persona, respond

RESULTS = Path(__file__).parent / "results"


def read_only(url: str) -> str:
    """SQLite opened with mode=ro, so the benchmark can never change the study."""
    if url.startswith("sqlite:///") and "mode=ro" not in url:
        return f"sqlite:///file:{url[len('sqlite:///'):]}?mode=ro&uri=true"
    return url


def load_lineups(url: str, study_name: str | None, by: list[str]) -> tuple[str, list[dict]]:
    """Every lineup of the study: its condition (with the item parameters named in ``by``), probe (and blurred
    photo), five faces, target place."""
    engine = create_engine(read_only(url))
    try:
        with Session(engine) as db:
            query = select(Study).order_by(Study.id)
            study = db.scalar(query.where(Study.name == study_name) if study_name else query)
            if study is None:
                raise SystemExit(f"no study {study_name!r} in {url}")
            images: dict[int, np.ndarray] = {}

            def image(image_id: int) -> np.ndarray:
                if image_id not in images:
                    png = db.get(StoredImage, image_id).png
                    images[image_id] = np.asarray(PILImage.open(io.BytesIO(png)).convert("L"), np.float64) / 255
                return images[image_id]

            out = []
            rows = db.execute(select(Lineup, Item).join(Item, Item.id == Lineup.item_id)
                              .where(Lineup.study_id == study.id).order_by(Lineup.id)).all()
            for lineup, item in tqdm(rows, desc="reading lineups", unit="lineup"):
                faces = db.scalars(select(LineupFace).where(LineupFace.lineup_id == lineup.id)
                                   .order_by(LineupFace.position)).all()
                params = item.params or {}
                condition = ("gold: real photo",) + ("",) * (3 + len(by)) if item.is_gold else (
                    item.model, item.attack, item.countermeasure, blur_of(params),
                    *(str(params.get(key, "")) for key in by))
                out.append({"condition": condition, "probe": image(item.image_id), "probe_id": item.image_id,
                            "face_ids": [f.image_id for f in faces],
                            "aux": image(item.aux_image_id) if item.aux_image_id else None,
                            "faces": [image(f.image_id) for f in faces],
                            "target": lineup.target_position if lineup.target_present else None})
            return study.name, out
    finally:
        engine.dispose()


def pixel_choice(probe: np.ndarray, faces: list[np.ndarray]) -> int:
    z = [(x - x.mean()) / max(x.std(), 1e-12) for x in (probe, *faces)]
    return int(np.argmax([np.mean(z[0] * f) for f in z[1:]]))


def deep_choices(lineups: list[dict]) -> tuple[list[int], list[int]] | None:
    """The deep judge's forced-choice and absent-allowed answers per lineup, or None where it is not installed."""
    try:
        from mi_harness.deep_face import ABSENT, DeepFaceJudge, distances, lineup_choice
    except ImportError:
        return None
    images = {lu["probe_id"]: lu["probe"] for lu in lineups}
    images.update({i: f for lu in lineups for i, f in zip(lu["face_ids"], lu["faces"])})
    ids = sorted(images)  # each stored image once: the lineups share their photos
    described = dict(zip(ids, DeepFaceJudge().descriptors(np.stack([images[i] for i in ids]), progress=True)))
    forced, with_absent = [], []
    for lineup in lineups:
        probe, mine = described[lineup["probe_id"]], np.stack([described[i] for i in lineup["face_ids"]])
        forced.append(int(np.argmin(distances(probe, mine)[0])))
        answer = lineup_choice(probe, mine, allow_absent=True)
        with_absent.append(None if answer == ABSENT else answer)
    return forced, with_absent


def attentive_bots(looks: int, seed: int) -> list[Persona]:
    """``looks`` attentive workers drawn as the panel draws them."""
    rng = random.Random(seed)
    _, efficiency, criterion, _, _ = PROFILES["attentive"]
    return [Persona(f"bench-{k}", "attentive", rng.uniform(*efficiency), rng.uniform(*criterion), rng.randrange(2**31))
            for k in range(looks)]


def bench_study(args) -> None:
    name, lineups = load_lineups(args.database, args.study, [k for k in args.by.split(",") if k])
    bots = attentive_bots(args.looks, args.seed)
    rng = random.Random(args.seed)
    start = time.perf_counter()
    for lineup in tqdm(lineups, desc="attentive bots", unit="lineup"):
        probes = [lineup["probe"]] + ([lineup["aux"]] if lineup["aux"] is not None else [])
        lineup["bots"] = [respond(bot, probes, lineup["faces"], True, 0, rng)[0] for bot in bots]
        lineup["pixel"] = pixel_choice(lineup["probe"], lineup["faces"])
    bot_seconds = time.perf_counter() - start
    deep = None if args.no_deep else deep_choices(lineups)
    if deep:
        for lineup, forced, absent in zip(lineups, *deep):
            lineup["deep_forced"], lineup["deep"] = forced, absent

    groups = defaultdict(list)
    for lineup in lineups:
        groups[lineup["condition"]].append(lineup)
    rows = []
    for condition, members in sorted(groups.items(), key=lambda kv: (kv[0][0].startswith("gold"), kv[0])):
        present = [lu for lu in members if lu["target"] is not None]
        row = {"condition": " / ".join(c for c in condition if c), "lineups": len(members), "present": len(present),
               "bots_hit": np.mean([b == lu["target"] for lu in present for b in lu["bots"]]) if present else None,
               "bots_accuracy": np.mean([b == lu["target"] for lu in members for b in lu["bots"]]),
               "bots_absent": np.mean([b is None for lu in members for b in lu["bots"]]),
               "pixel_hit": np.mean([lu["pixel"] == lu["target"] for lu in present]) if present else None}
        if deep:
            row["deep_hit_forced"] = np.mean([lu["deep_forced"] == lu["target"] for lu in present]) if present else None
            row["deep_hit"] = np.mean([lu["deep"] == lu["target"] for lu in present]) if present else None
        rows.append(row)

    def pct(value):
        return "–" if value is None else f"{100 * value:.0f}%"

    header = ["condition", "lineups (target present)", "attentive bots: hit rate", "accuracy", "say absent",
              "pixel judge: hit rate"] + (["deep judge: hit rate, forced", "with absent at 0.6"] if deep else [])
    print(f"\nstudy {name!r}: {len(lineups)} lineups, {args.looks} attentive looks each "
          f"({bot_seconds:.1f} s for the bots)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [row["condition"], f"{row['lineups']} ({row['present']})", pct(row["bots_hit"]),
                 pct(row["bots_accuracy"]), pct(row["bots_absent"]), pct(row["pixel_hit"])]
        if deep:
            cells += [pct(row["deep_hit_forced"]), pct(row["deep_hit"])]
        print("| " + " | ".join(cells) + " |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "panel.json").write_text(json.dumps(
        {"machine": platform.platform(), "study": name, "looks": args.looks, "seed": args.seed,
         "rows": [{k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()} for r in rows]},
        indent=1))


def bench_efficiency(args) -> None:
    """The perception's efficiency against the ideal observer: 5-face lineups of AT&T training photos, the probe
    one of the five photos itself plus white noise; the noise level at which each is right half the time."""
    from attack.faces import Split, load_faces

    faces, split = load_faces(args.faces), Split.make(0)
    pick = random.Random(args.seed)
    lineups = [[faces.images[faces.index_of(s, pick.choice(split.train[s]))] for s in pick.sample(range(40), 5)]
               for _ in range(args.lineups)]
    noise = np.random.default_rng(args.seed)
    observer = Observer(PIPELINE_EFFICIENCY, 0.0)
    curves = {"ideal": [], "perception": []}
    levels = [0.5, 0.7, 1.0, 1.4, 2.0] + [4.0, 6.0, 8.0, 11.0, 16.0, 22.0]
    for sigma in tqdm(levels, desc="noise levels"):
        right = {"ideal": 0, "perception": 0}
        for shown in lineups:
            k = int(noise.integers(5))
            probe = shown[k] + sigma * noise.standard_normal(shown[k].shape)
            right["ideal"] += int(np.argmax([np.sum(probe * (f - f.mean())) for f in shown]) == k)
            right["perception"] += int(judge(observer, [probe], shown, False, noise).pick == k)
        for key in curves:
            curves[key].append(right[key] / len(lineups))
    print("\n| noise sd | ideal observer | perception (η = PIPELINE_EFFICIENCY) |\n|---|---|---|")
    for sigma, ideal, seen in zip(levels, curves["ideal"], curves["perception"]):
        print(f"| {sigma} | {100 * ideal:.0f}% | {100 * seen:.0f}% |")
    half = {key: float(np.exp(np.interp(-0.5, -np.array(v), np.log(levels)))) for key, v in curves.items()}
    print(f"\nright half the time at noise sd {half['ideal']:.2f} (ideal) and {half['perception']:.2f} (perception): "
          f"efficiency {(half['perception'] / half['ideal']) ** 2:.4f} (PIPELINE_EFFICIENCY = {PIPELINE_EFFICIENCY})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="sqlite:///runs/demo/survey.db")
    parser.add_argument("--study", help="the study's name [the first in the database]")
    parser.add_argument("--by", default="", help="item parameters that split conditions further, e.g. "
                        "access,training_set (the paper authors' reconstructions)")
    parser.add_argument("--looks", type=int, default=20, help="attentive bots shown each lineup")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-deep", action="store_true", help="leave out the deep face judge")
    parser.add_argument("--efficiency", action="store_true", help="measure the perception's efficiency instead")
    parser.add_argument("--faces", help="AT&T faces folder (for --efficiency) [$MI_FACES_DIR]")
    parser.add_argument("--lineups", type=int, default=300, help="lineups per noise level (for --efficiency)")
    args = parser.parse_args()
    bench_efficiency(args) if args.efficiency else bench_study(args)


if __name__ == "__main__":
    main()
