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
from pathlib import Path, PurePosixPath

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from attack.bundle import Bundle, BundleError, read_bundle
from mi_harness.conditions import CONDITION, blur_of
from mi_harness.screening import screen_image, screening_record

from .lineups import LineupError, Target, plan_lineups
from .models import Image, Item, Lineup, LineupFace, Run, Study
from .settings import SettingsError, StudySettings
from .uploads import ImportProblem, unpack_zip

GOLD = "gold"


def token() -> str:
    return secrets.token_urlsafe(16)


def load_bundle(path: str | Path) -> Bundle:
    try:
        return read_bundle(path)
    except BundleError as exc:
        raise ImportProblem(str(exc)) from None


def bundle_from_folder(folder: str | Path, csv_path: str | Path, faces_dir: str | Path | None,
                       workdir: str | Path, where: dict[str, str] | None = None) -> Bundle:
    """A folder of images plus a CSV, converted to a bundle in ``workdir`` (the gallery comes from the faces)."""
    from attack.external import convert_folder
    from attack.faces import load_faces, resolve_faces_dir

    try:
        faces = load_faces(resolve_faces_dir(faces_dir))
        return convert_folder(folder, csv_path, Path(workdir) / "bundle", faces, where=where)
    except (BundleError, FileNotFoundError, ValueError) as exc:
        raise ImportProblem(str(exc)) from None


def _photo_key(bundle_image: str) -> str:
    """``gallery/s3/7.png`` -> ``s3/7``: how a deblurring item names the photo it was blurred from."""
    path = PurePosixPath(bundle_image)
    return f"{path.parent.name}/{path.stem}"


def _excluded_photos(item) -> frozenset[str]:
    source = (item.params or {}).get("blurred_photo")
    if not source:
        return frozenset()
    path = PurePosixPath(str(source))
    return frozenset({f"{path.parent.name}/{path.stem}"})


def _png(bundle: Bundle, relative: str) -> bytes:
    with PILImage.open(bundle.path(relative)) as img:
        buffer = io.BytesIO()
        img.convert("L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def screen_bundle(bundle: Bundle, keep_unusable: bool) -> tuple[list, dict]:
    """The items a study shows (all, or the usable ones) and the screening record the study keeps."""
    verdicts = [screen_image(bundle.load_image(it.image)) for it in bundle.items]
    conditions = [{**{k: getattr(it, k) for k in CONDITION[:3]}, "blur": blur_of(it.params)}
                  for it in bundle.items]
    record = screening_record(conditions, [it.id for it in bundle.items], verdicts, keep_unusable)
    shown = [it for it, v in zip(bundle.items, verdicts) if keep_unusable or v.usable]
    if bundle.items and not shown:
        reasons = ", ".join(sorted({v.reason for v in verdicts}))
        raise ImportProblem(f"all {len(verdicts)} items of the bundle are unusable ({reasons}); nothing to show "
                            "people (keep them with --keep-unusable, keep_unusable in the API, or the admin form's "
                            "box)")
    return shown, record


def create_study(db: Session, bundle: Bundle, name: str, settings: StudySettings, source: str,
                 keep_unusable: bool = False) -> Study:
    """Store a study, its images, items, lineups and runs, or raise ImportProblem having stored nothing.
    Unusable items (screening) are left out unless ``keep_unusable``."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ImportProblem("a study needs a name of 1 to 120 characters")
    if db.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise ImportProblem(f"a study named {name!r} already exists")
    if settings.problems():
        raise ImportProblem("; ".join(settings.problems()))

    gallery: dict[str, list[str]] = {}
    gallery_file: dict[tuple[str, str], str] = {}
    for g in bundle.gallery:
        key = _photo_key(g.image)
        gallery.setdefault(g.subject, []).append(key)
        gallery_file[(g.subject, key)] = g.image
    if not gallery:
        raise ImportProblem("the bundle has no gallery: lineups need real photos of the subjects")

    shown, screening = screen_bundle(bundle, keep_unusable)
    targets = [Target(it.id, it.subject, (it.model, it.attack, it.countermeasure), _excluded_photos(it))
               for it in shown]
    gold_probes = _gold_probes(gallery, settings)
    try:
        plans = plan_lineups(targets, gallery, settings.target_share, settings.seed)
        gold_plans = plan_lineups([Target(key, subject, (GOLD,), frozenset({photo}))
                                   for key, (subject, photo) in gold_probes.items()],
                                  gallery, 1.0, settings.seed + 1) if gold_probes else {}
    except LineupError as exc:
        raise ImportProblem(str(exc)) from None

    study = Study(name=name, slug=secrets.token_urlsafe(9), source=source,
                  settings={**settings.as_dict(),
                            "skilled_definition": settings.skilled_definition(bool(gold_probes)),
                            "screening": screening, "display": list(bundle.display_size)})
    db.add(study)
    db.flush()
    images: dict[str, Image] = {}

    def stored(relative: str) -> Image:
        if relative not in images:
            png = _png(bundle, relative)
            images[relative] = Image(study_id=study.id, png=png, sha256=hashlib.sha256(png).hexdigest())
            db.add(images[relative])
            db.flush()
        return images[relative]

    def add(external_id, subject, model, attack, countermeasure, image, aux, params, plan, gold=False):
        item = Item(study_id=study.id, external_id=external_id, subject=subject, model=model, attack=attack,
                    countermeasure=countermeasure, is_gold=gold, params=params, image_id=stored(image).id,
                    aux_image_id=stored(aux).id if aux else None)
        db.add(item)
        db.flush()
        lineup = Lineup(study_id=study.id, item_id=item.id, token=token(), aux_token=token(),
                        target_present=plan.present, target_position=plan.target_position)
        db.add(lineup)
        db.flush()
        for position, (subject_, photo) in enumerate(plan.faces):
            db.add(LineupFace(lineup_id=lineup.id, position=position, subject=subject_,
                              image_id=stored(gallery_file[(subject_, photo)]).id, token=token()))

    for it in sorted(shown, key=lambda it: it.id):
        add(it.id, it.subject, it.model, it.attack, it.countermeasure, it.image, it.aux_image,
            {**(it.params or {}), **{k: getattr(it, k) for k in ("confidence", "iterations", "queries", "seconds")}},
            plans[it.id])
    for key, (subject, photo) in sorted(gold_probes.items()):
        add(key, subject, GOLD, GOLD, "none", gallery_file[(subject, photo)], None, {"photo": photo},
            gold_plans[key], gold=True)
    for number in range(1, settings.runs + 1):
        db.add(Run(study_id=study.id, number=number, status="pending"))
    db.flush()
    return study


def _gold_probes(gallery: dict[str, list[str]], settings: StudySettings) -> dict[str, tuple[str, str]]:
    """Gold items: a real photo of a subject, whose lineup shows a different photo of the same subject."""
    eligible = sorted(s for s, photos in gallery.items() if len(photos) >= 2)
    if settings.gold_items and not eligible:
        raise ImportProblem("gold items need subjects with at least two photos in the gallery")
    rng = random.Random(settings.seed + 2)
    probes = {}
    for n in range(settings.gold_items):
        subject = eligible[n % len(eligible)]
        probes[f"gold-{n + 1:03d}-{subject}"] = (subject, rng.choice(sorted(gallery[subject])))
    return probes


def settings_from(data: dict) -> StudySettings:
    try:
        return StudySettings.from_mapping(data)
    except SettingsError as exc:
        raise ImportProblem(str(exc)) from None


def create_from_source(db: Session, name: str, settings: dict, *, bundle: str | None = None,
                       zip_bytes: bytes | None = None, folder: str | None = None, csv: str | None = None,
                       faces_dir: str | None = None, where: dict[str, str] | None = None,
                       keep_unusable: bool = False) -> Study:
    """A study from exactly one source: a bundle folder, a zipped bundle, or a folder of images plus a CSV
    (``where`` keeps the CSV's rows whose columns have these values); ``keep_unusable`` as in create_study."""
    for label, value in (("bundle", bundle), ("folder", folder), ("csv", csv)):
        if value is not None and not isinstance(value, str):
            raise ImportProblem(f"{label} must be a path (a string), got {value!r}")
    given = [name_ for name_, value in (("bundle", bundle), ("zip", zip_bytes), ("folder", folder)) if value]
    if len(given) != 1:
        raise ImportProblem("give exactly one source: a bundle folder, a zipped bundle, or a folder plus a CSV")
    parsed = settings_from(settings)
    with tempfile.TemporaryDirectory(prefix="mi-harness-import-") as work:
        if bundle:
            loaded, source = load_bundle(bundle), f"bundle {bundle}"
        elif zip_bytes:
            loaded, source = load_bundle(unpack_zip(zip_bytes, Path(work))), "uploaded bundle (zip)"
        else:
            if not csv:
                raise ImportProblem("a folder of images needs its CSV (file, subject[, model, attack, countermeasure])")
            loaded = bundle_from_folder(folder, csv, faces_dir, work, where)
            source = f"folder {folder} with {csv}" + "".join(f", {k}={v}" for k, v in (where or {}).items())
        return create_study(db, loaded, name, parsed, source, keep_unusable)
