"""The torch-free commands on bundles: check one, convert reconstructions made elsewhere, and judge them."""
from __future__ import annotations

import csv
import functools
import io
import json
import os
from pathlib import Path

import click

from .bundle import BundleError, read_bundle
from .galleries import GalleryError, default_gallery_dir, open_gallery


def user_errors(fn):
    """A bad bundle, gallery or value is a clean message and exit status 1, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (BundleError, GalleryError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    return wrapper


def gallery_option(fn):
    """``--gallery`` (a folder of identity folders, or a CSV); ``--faces`` is its older name. The default is the
    AT&T faces ($MI_FACES_DIR, then ../shared/data/att_faces)."""
    fn = click.option("--faces", "faces_dir", type=click.Path(exists=True), hidden=True)(fn)
    return click.option("--gallery", "gallery_path", type=click.Path(exists=True),
                        help="The identities' real photos: a folder with one subfolder per identity, or a CSV "
                             "(file, identity[, role, attributes...]). Default: the AT&T faces.")(fn)


def load_gallery(gallery_path: str | None, faces_dir: str | None):
    return open_gallery(gallery_path or default_gallery_dir(faces_dir))


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise click.BadParameter(f"{text!r}: use WIDTHxHEIGHT, e.g. 64x64", param_hint="--size")
    return int(width), int(height)


@click.group("bundle")
def bundle() -> None:
    """Check bundles, and make one from reconstructions produced elsewhere."""


@bundle.command("check")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@user_errors
def bundle_check(bundle_dir) -> None:
    """Validate a bundle, summarise it, and list the items a person could not use (a study leaves them out)."""
    from .screening import screen_image

    b = read_bundle(bundle_dir)
    width, height = b.image_size
    click.echo(f"{bundle_dir}: valid, {len(b.items)} items, {len(b.gallery)} gallery photos "
               f"({b.dataset['name']}, {width}x{height} {'colour' if b.mode == 'RGB' else 'grey'})")
    flagged = [(item, verdict) for item in b.items if not (verdict := screen_image(b.load_image(item.image))).usable]
    if flagged:
        click.echo(f"{len(flagged)} unusable items (left out of a study unless --keep-unusable):")
    for item, verdict in flagged:
        click.echo(f"  {item.id} ({item.model}, {item.attack}, {item.countermeasure}): {verdict.detail}")


@bundle.command("convert")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, exists=True),
              help="Columns file, subject (or identity)[, model, attack, countermeasure, blur, ...]. Without it, "
                   "FOLDER holds one folder per class (FOLDER/CLASS/IMAGE), as attack toolboxes write.")
@click.option("--class-map", type=click.Path(dir_okay=False, exists=True),
              help="Class folder name (e.g. a class index) -> identity: a CSV class,identity or a JSON object or "
                   "list. Without it, the class folders are named by identity.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@gallery_option
@click.option("--where", multiple=True, help="Keep CSV rows with COLUMN=VALUE (repeatable).")
@click.option("--split-seed", type=int, default=0, show_default=True,
              help="Roles (train/validation) of the gallery photos the gallery does not give itself.")
@click.option("--size", help="The bundle's image size WIDTHxHEIGHT (default: the gallery's, if all its photos share "
                             "one, else the reconstructions').")
@click.option("--grey", is_flag=True, help="Convert everything to greyscale (default: colour if any image is).")
@click.option("--model", default="unknown", show_default=True, help="Class folders: the model's name.")
@click.option("--attack", "attack_name", default="external", show_default=True, help="Class folders: the attack.")
@click.option("--countermeasure", default="none", show_default=True, help="Class folders: the countermeasure.")
@user_errors
def bundle_convert(folder, csv_path, class_map, out_dir, gallery_path, faces_dir, where, split_seed, size, grey,
                   model, attack_name, countermeasure) -> None:
    """Convert reconstructions made elsewhere (a CSV, or class folders) into a bundle with their gallery, e.g. the
    paper authors' images or a toolbox's output on CelebA or FaceScrub."""
    from .convert import convert

    if csv_path and class_map:
        raise click.UsageError("--class-map is for class folders; a CSV names each image's identity itself")
    filters = {}
    for clause in where:
        column, sep, value = clause.partition("=")
        if not sep:
            raise click.BadParameter(f"{clause!r}: use COLUMN=VALUE", param_hint="--where")
        filters[column] = value
    b = convert(out_dir, load_gallery(gallery_path, faces_dir), folder=folder, csv_path=csv_path,
                class_map=class_map, where=filters, split_seed=split_seed, size=parse_size(size), grey=grey,
                model=model, attack=attack_name, countermeasure=countermeasure)
    width, height = b.image_size
    click.echo(f"{len(b.items)} reconstructions and {len(b.gallery)} gallery photos ({width}x{height} "
               f"{'colour' if b.mode == 'RGB' else 'grey'}) -> {out_dir}")


@click.command("evaluate")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--by", default="model,attack,countermeasure,blur", show_default=True,
              help="Item fields (or params keys) to group on.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the table as JSON.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Also write the table as CSV.")
@click.option("--items", "items_out", type=click.Path(dir_okay=False),
              help="Also write one CSV row per reconstruction (each judge's answer, screening's verdict).")
@click.option("--gallery", "gallery_path", type=click.Path(exists=True),
              help="Judge against this gallery instead of the bundle's own (a folder of identity folders or a CSV).")
@click.option("--faces", "faces_dir", type=click.Path(exists=True), hidden=True)
@user_errors
def evaluate(bundle_dir, by, json_out, csv_out, items_out, gallery_path, faces_dir) -> None:
    """Identification of each group by independent recognisers (deep face recogniser first, then pixels and
    eigenfaces) over the bundle's gallery, screening's unusable items counted as failures, and SSIM."""
    from .evaluate import Recogniser, References, format_table, group_scores, groups_as_rows, item_rows, score_bundle

    bundle = read_bundle(bundle_dir)
    grouping = tuple(k.strip() for k in by.split(","))
    other = gallery_path or faces_dir
    references = References.from_gallery(open_gallery(other), bundle.image_size, bundle.mode == "RGB") if other \
        else References.from_bundle(bundle)
    scored = score_bundle(bundle, Recogniser(references))
    groups = group_scores(bundle, scored, grouping)
    click.echo(format_table(groups))
    rows = groups_as_rows(groups)
    if json_out:
        write_atomically(Path(json_out), json.dumps(rows, indent=1))
    if csv_out:
        write_atomically(Path(csv_out), csv_text(rows))
    if items_out:
        write_atomically(Path(items_out), csv_text(item_rows(bundle, scored)))


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))  # score_bundle refuses a bundle with no items
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary name beside ``path``, then rename: an interrupted run leaves no half file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
