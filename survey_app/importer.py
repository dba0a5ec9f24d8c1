"""Creating a study from a reconstruction bundle: validate everything, then store it in one transaction.

The images are re-encoded into the database (which drops any text chunk a PNG might carry, a file name
say), so the study keeps working after the bundle folder is gone and the pages can serve nothing but
pixels under random tokens.

Items no person could use (``mi_harness.screening``: near-constant images, grain) are left out by default; the
study's settings record, under the key ``screening`` (which no settings form or API can edit), how many of each
condition were left out and why, so the analysis can count them as failures of the attack.
"""
from __future__ import annotations

import hashlib
import io
import random
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from mi_harness.bundle import Bundle, BundleError, read_bundle
from mi_harness.bundle import Item as BundleItem
from mi_harness.conditions import CONDITION
from mi_harness.convert import convert
from mi_harness.deep_face import DESCRIPTOR_VERSION
from mi_harness.galleries import GalleryError, default_gallery_dir, open_gallery
from mi_harness.screening import screen_image, screening_record

from .fillers import (
    FillerError,
    GalleryFacts,
    MatchedFillers,
    SimilarFillers,
    policy_for,
    read_attributes_csv,
    subject_attributes,
)
from .gold import Look, gold_png
from .lineups import LineupError, Target, plan_lineups
from .models import Image, Item, Lineup, LineupFace, Run, Study
from .settings import SettingsError, StudySettings
from .uploads import ImportProblem, unpack_zip

GOLD = "gold"
GOLD_LOOK_SAMPLE = 500
"""Reconstructions a study measures to make its gold probes look like them (survey_app/gold.py)."""


def token() -> str:
    return secrets.token_urlsafe(16)


def load_bundle(path: str | Path) -> Bundle:
    try:
        return read_bundle(path)
    except BundleError as exc:
        raise ImportProblem(str(exc)) from None


def bundle_from_folder(folder: str | Path, csv_path: str | Path | None, gallery: str | Path | None,
                       workdir: str | Path, where: dict[str, str] | None = None,
                       class_map: str | Path | None = None) -> Bundle:
    """Reconstructions made elsewhere (a folder plus a CSV, or class folders with a class map), converted to a
    bundle in ``workdir`` with their gallery (a folder of identity folders or a CSV; default the AT&T faces)."""
    try:
        source = open_gallery(gallery or default_gallery_dir())
        return convert(Path(workdir) / "bundle", source, folder=folder, csv_path=csv_path, class_map=class_map,
                       where=where)
    except (BundleError, GalleryError, FileNotFoundError, ValueError) as exc:
        raise ImportProblem(str(exc)) from None


def _excluded_photos(item) -> frozenset[str]:
    """A deblurring item's source photo, which its lineup must never show (the blurred copy would give it away)."""
    return frozenset({item.source_photo}) if item.source_photo else frozenset()


def _condition(item) -> tuple[str, ...]:
    """The item's values of ``mi_harness.conditions.CONDITION``: what the analysis groups by, so what target-present
    lineups are balanced over."""
    return tuple((item.blur or "") if column == "blur" else str(getattr(item, column)) for column in CONDITION)


def _png(bundle: Bundle, relative: str) -> bytes:
    """The image re-encoded in the bundle's mode (grey or colour), which drops every text chunk."""
    try:
        with PILImage.open(bundle.path(relative)) as img:
            buffer = io.BytesIO()
            img.convert(bundle.mode).save(buffer, format="PNG", optimize=False)
    except (OSError, ValueError) as exc:
        raise ImportProblem(f"{relative}: the image cannot be decoded ({exc.__class__.__name__}); "
                            "the bundle is damaged") from None
    return buffer.getvalue()


def screen_bundle(bundle: Bundle, keep_unusable: bool) -> tuple[list, dict]:
    """The items a study shows (all, or the usable ones) and the screening record the study keeps."""
    verdicts = [screen_image(bundle.load_image(it.image)) for it in bundle.items]
    conditions = [{**{k: getattr(it, k) for k in CONDITION[:3]}, "blur": it.blur or ""} for it in bundle.items]
    record = screening_record(conditions, [it.id for it in bundle.items], verdicts, keep_unusable)
    shown = [it for it, v in zip(bundle.items, verdicts) if keep_unusable or v.usable]
    if bundle.items and not shown:
        reasons = ", ".join(sorted({v.reason for v in verdicts}))
        raise ImportProblem(f"all {len(verdicts)} items of the bundle are unusable ({reasons}); nothing to show "
                            "people (keep them with --keep-unusable, keep_unusable in the API, or the admin form's "
                            "box)")
    return shown, record


def create_study(db: Session, bundle: Bundle, name: str, settings: StudySettings, source: str,
                 keep_unusable: bool = False, attributes: dict[str, dict[str, str]] | None = None) -> Study:
    """Store a study, its images, items, lineups and runs, or raise ImportProblem having stored nothing.
    Unusable items (screening) are left out unless ``keep_unusable``. ``attributes`` (subject -> column -> value,
    e.g. from the AT&T attributes CSV) adds to or overrides the gallery's own attributes for matched fillers."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ImportProblem("a study needs a name of 1 to 120 characters")
    if db.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise ImportProblem(f"a study named {name!r} already exists")
    if settings.problems():
        raise ImportProblem("; ".join(settings.problems()))

    gallery: dict[str, list[str]] = {}  # subject -> its photos, named by their bundle path
    roles: dict[str, str] = {}
    for g in bundle.gallery:
        gallery.setdefault(g.subject, []).append(g.image)
        roles[g.image] = g.role
    if not gallery:
        raise ImportProblem("the bundle has no gallery: lineups need real photos of the subjects")

    shown, screening = screen_bundle(bundle, keep_unusable)
    targets = [Target(it.id, it.subject, _condition(it), _excluded_photos(it)) for it in shown]
    gold_probes = _gold_probes(gallery, settings)
    policy = _filler_policy(bundle, settings, attributes)
    try:
        plans = plan_lineups(targets, gallery, settings.target_share, settings.seed, roles=roles,
                             photo_role=settings.photo_role, fillers=policy)
        gold_plans = plan_lineups([Target(key, subject, (GOLD,), frozenset({photo}))
                                   for key, (subject, photo) in gold_probes.items()],
                                  gallery, 1.0, settings.seed + 1, roles=roles, fillers=policy) if gold_probes else {}
    except LineupError as exc:
        raise ImportProblem(str(exc)) from None
    controls = plan_controls(shown, plans, settings)

    study = Study(name=name, slug=secrets.token_urlsafe(9), source=source,
                  settings={**settings.as_dict(),
                            "skilled_definition": settings.skilled_definition(bool(gold_probes)),
                            "screening": screening, "display": list(bundle.display_size),
                            "fillers": _filler_record(policy, attributes)})
    db.add(study)
    db.flush()
    images: dict[str, Image] = {}

    def stored(relative: str) -> Image:
        return stored_png(relative, lambda: _png(bundle, relative))

    def stored_png(key: str, png) -> Image:
        if key not in images:
            data = png()
            images[key] = Image(study_id=study.id, png=data, sha256=hashlib.sha256(data).hexdigest())
            db.add(images[key])
            db.flush()
        return images[key]

    def add(external_id, subject, condition, image, aux, params, plan, gold=False, control=False):
        model, attack, countermeasure, _ = condition
        item = Item(study_id=study.id, external_id=external_id, subject=subject, model=model, attack=attack,
                    countermeasure=countermeasure, is_gold=gold, is_control=control, params=params,
                    image_id=image.id, aux_image_id=stored(aux).id if aux else None)
        db.add(item)
        db.flush()
        lineup = Lineup(study_id=study.id, item_id=item.id, token=token(), aux_token=token(),
                        target_present=plan.present, target_position=plan.target_position, photo=plan.photo,
                        photo_role=plan.photo_role, fillers=plan.fillers)
        db.add(lineup)
        db.flush()
        for position, (subject_, photo) in enumerate(plan.faces):
            db.add(LineupFace(lineup_id=lineup.id, position=position, subject=subject_,
                              image_id=stored(photo).id, token=token()))

    for it in sorted(shown, key=lambda it: it.id):
        add(it.id, it.subject, _condition(it), stored(it.image), it.aux_image,
            {**(it.params or {}), **{k: getattr(it, k) for k in ("blur", "source_photo", "confidence", "iterations",
                                                                  "queries", "seconds")}},
            plans[it.id])
    for control in controls:
        real = control.real
        if control.probe is None:
            probe, aux = stored_png(SILHOUETTE, lambda: silhouette_png(bundle.image_size)), None
        else:
            probe, aux = stored(control.probe.image), control.probe.aux_image
        add(control.key, real.subject, _condition(real), probe, aux,
            {"control_of": real.id, "probe": f"other:{control.probe.id}" if control.probe else "silhouette",
             "blur": real.blur},
            plans[real.id], control=True)
    if gold_probes:  # last, so that each probe can be checked against every other image the study serves
        look = Look(bundle.load_image(it.image) for it in sorted(shown, key=lambda it: it.id)[:GOLD_LOOK_SAMPLE])
    for n, (key, (subject, photo)) in enumerate(sorted(gold_probes.items())):
        served = {image.sha256 for image in images.values()} | \
            {stored(photo_).sha256 for _, photo_ in gold_plans[key].faces}
        png, sigma = gold_png(look, bundle.load_image(photo), served, settings.seed + n,
                              bundle.mode)
        add(key, subject, (GOLD, GOLD, "none", ""), stored_png(f"gold:{key}", lambda png=png: png), None,
            {"photo": photo, "probe": f"the photo blurred (sigma {sigma:.2f} px) and contrast-matched to the "
                                      "study's reconstructions (survey_app/gold.py)"},
            gold_plans[key], gold=True)
    for number in range(1, settings.runs + 1):
        db.add(Run(study_id=study.id, number=number, status="pending"))
    db.flush()
    return study


def _filler_policy(bundle: Bundle, settings: StudySettings, attributes: dict | None):
    """The study's filler policy, from its settings and the gallery's facts (attributes, photos)."""
    try:
        facts = GalleryFacts()
        if settings.filler_policy == "matched":
            facts.attributes = subject_attributes([(g.subject, g.attributes) for g in bundle.gallery])
            for subject, values in (attributes or {}).items():
                if subject in facts.attributes:
                    facts.attributes[subject] = {**facts.attributes[subject], **values}
        elif settings.filler_policy == "similar":
            for g in bundle.gallery:
                facts.images.setdefault(g.subject, []).append(bundle.load_image(g.image))
        return policy_for(settings.filler_policy, settings.matched_columns, facts)
    except FillerError as exc:
        raise ImportProblem(str(exc)) from None


def _filler_record(policy, attributes: dict | None) -> dict:
    """What the study keeps of its filler policy: its name, its bounds or columns, and whether attributes were
    given beside the gallery's own."""
    record = {"policy": policy.name}
    if isinstance(policy, SimilarFillers):
        record.update(descriptor=DESCRIPTOR_VERSION, near_duplicate=policy.near_duplicate, within=policy.within)
    if isinstance(policy, MatchedFillers):
        record.update(matched_on=list(policy.columns), attributes_given=bool(attributes))
    return record


def _gold_probes(gallery: dict[str, list[str]], settings: StudySettings) -> dict[str, tuple[str, str]]:
    """Gold items: a real photo of a subject, whose lineup shows a different photo of the same subject. The photo is
    shown degraded to look like the study's reconstructions (survey_app/gold.py)."""
    eligible = sorted(s for s, photos in gallery.items() if len(photos) >= 2)
    if settings.gold_items and not eligible:
        raise ImportProblem("gold items need subjects with at least two photos in the gallery")
    rng = random.Random(settings.seed + 2)
    probes = {}
    for n in range(settings.gold_items):
        subject = eligible[n % len(eligible)]
        probes[f"gold-{n + 1:03d}-{subject}"] = (subject, rng.choice(sorted(gallery[subject])))
    return probes


@dataclass(frozen=True)
class Control:
    key: str
    real: BundleItem
    """The bundle item whose target-present lineup the control shows."""
    probe: BundleItem | None
    """The other subject's item whose reconstruction is shown, or None for the silhouette."""


def plan_controls(shown: list[BundleItem], plans: dict, settings: StudySettings) -> list[Control]:
    """The study's mock-witness items: ``control_items`` target-present lineups, taken in turn from each condition
    (so every condition gets its share, to within one), each shown with a probe that tells nothing of its target:
    another subject's reconstruction of the same condition (of someone not in the lineup), or a silhouette."""
    if not settings.control_items:
        return []
    rng = random.Random(settings.seed + 3)
    by_condition: dict[tuple, list[BundleItem]] = {}
    for it in sorted(shown, key=lambda it: it.id):
        if plans[it.id].present:
            by_condition.setdefault(_condition(it), []).append(it)
    available = sum(len(v) for v in by_condition.values())
    if settings.control_items > available:
        raise ImportProblem(f"control_items is {settings.control_items} but the study has {available} "
                            "target-present lineups to copy (one control each at most)")
    queues = []
    for condition in sorted(by_condition):
        members = by_condition[condition][:]
        rng.shuffle(members)
        queues.append(members)
    picked: list[BundleItem] = []
    while len(picked) < settings.control_items:
        for queue in queues:
            if queue and len(picked) < settings.control_items:
                picked.append(queue.pop())
    controls = []
    for n, real in enumerate(sorted(picked, key=lambda it: it.id), start=1):
        probe = None
        if settings.control_probe == "other":
            in_lineup = {subject for subject, _ in plans[real.id].faces}
            outside = [it for it in shown if it.subject not in in_lineup]
            # the same condition where it can be (the probe then looks like the real items'), else the same attack,
            # else any reconstruction of someone outside the lineup
            choices = sorted([it for it in outside if _condition(it) == _condition(real)]
                             or [it for it in outside if it.attack == real.attack] or outside, key=lambda it: it.id)
            if not choices:
                raise ImportProblem(f"no reconstruction of a subject outside the lineup of {real.id!r} to show as "
                                    "its control's probe: use control_probe silhouette")
            probe = rng.choice(choices)
        controls.append(Control(f"control-{n:03d}-{real.id}", real, probe))
    return controls


SILHOUETTE = "<silhouette>"
"""The silhouette's key among a study's stored images (bundle paths never start with '<')."""


def silhouette_png(size: tuple[int, int]) -> bytes:
    """A neutral head-and-shoulders silhouette, mid-grey on light grey, at the bundle's image size: the shape of a
    portrait and nothing of anyone's face."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(float)
    cx = (width - 1) / 2
    head = ((x - cx) / (0.30 * width)) ** 2 + ((y - 0.42 * height) / (0.30 * height)) ** 2 <= 1
    shoulders = ((x - cx) / (0.50 * width)) ** 2 + ((y - 1.05 * height) / (0.30 * height)) ** 2 <= 1
    buffer = io.BytesIO()
    PILImage.fromarray(np.where(head | shoulders, 110, 190).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def settings_from(data: dict) -> StudySettings:
    try:
        return StudySettings.from_mapping(data)
    except SettingsError as exc:
        raise ImportProblem(str(exc)) from None


def create_from_source(db: Session, name: str, settings: dict, *, bundle: str | None = None,
                       zip_bytes: bytes | None = None, folder: str | None = None, csv: str | None = None,
                       faces_dir: str | None = None, where: dict[str, str] | None = None,
                       keep_unusable: bool = False, class_map: str | None = None,
                       attributes: str | None = None) -> Study:
    """A study from exactly one source: a bundle folder, a zipped bundle, or a folder of reconstructions made
    elsewhere with a CSV (``where`` keeps the CSV's rows whose columns have these values) or in class folders
    (``class_map``: class -> identity), whose gallery is ``faces_dir`` (any gallery; default the AT&T faces);
    ``keep_unusable`` as in create_study; ``attributes``: a CSV of subject attributes for matched fillers (e.g.
    the AT&T faces' ``att_faces_attributes.csv``), beside those the gallery carries."""
    for label, value in (("bundle", bundle), ("folder", folder), ("csv", csv), ("class_map", class_map),
                         ("gallery", faces_dir), ("attributes", attributes)):
        if value is not None and not isinstance(value, str):
            raise ImportProblem(f"{label} must be a path (a string), got {value!r}")
    given = [name_ for name_, value in (("bundle", bundle), ("zip", zip_bytes), ("folder", folder)) if value]
    if len(given) != 1:
        raise ImportProblem("give exactly one source: a bundle folder, a zipped bundle, or a folder plus a CSV")
    parsed = settings_from(settings)
    try:
        subject_values = read_attributes_csv(attributes) if attributes else None
    except FillerError as exc:
        raise ImportProblem(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="mi-harness-import-") as work:
        if bundle:
            loaded, source = load_bundle(bundle), f"bundle {bundle}"
        elif zip_bytes:
            loaded, source = load_bundle(unpack_zip(zip_bytes, Path(work))), "uploaded bundle (zip)"
        else:
            if csv and class_map:
                raise ImportProblem("a class map is for class folders; a CSV names each image's identity itself")
            loaded = bundle_from_folder(folder, csv, faces_dir, work, where, class_map)
            source = f"folder {folder} with {csv or class_map or 'class folders named by identity'}" + \
                "".join(f", {k}={v}" for k, v in (where or {}).items())
        return create_study(db, loaded, name, parsed, source, keep_unusable, subject_values)
