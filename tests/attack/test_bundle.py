import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from attack.faces import Split
from attack.gallery import dataset_section, gallery_images
from mi_harness.bundle import Bundle, BundleError, Item, read_bundle, to_png_pixels, write_bundle


def make_bundle(faces, tmp_path, n_items=3):
    split = Split.make(0)
    gallery, images = gallery_images(faces, split)
    items = []
    rng = np.random.default_rng(0)
    for k in range(n_items):
        name = f"items/r{k}.png"
        images[name] = to_png_pixels(rng.normal(size=(112, 92)), stretch=True)
        items.append(Item(id=f"r{k}", subject=f"s{k + 1}", model="softmax", attack="mi-face",
                          countermeasure="round:0.01", image=name, confidence=0.99, iterations=120, queries=121,
                          seconds=0.5, params={"lam": 0.1}))
    bundle = Bundle(dataset=dataset_section(split), gallery=gallery, items=items)
    path = write_bundle(bundle, tmp_path / "bundle", images)
    return path, images


def test_round_trip_keeps_every_field_and_pixel(faces, tmp_path):
    path, images = make_bundle(faces, tmp_path)
    bundle = read_bundle(path)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "mi-harness/bundle" and manifest["version"] == 2 and manifest["created"]
    assert bundle.dataset["image_size"] == [92, 112] and bundle.dataset["split_seed"] == 0
    assert bundle.dataset["split"]["s1"]["train"] == Split.make(0).train[0]
    assert len(bundle.gallery) == 400
    assert {g.role for g in bundle.gallery} == {"train", "validation"}
    assert sum(g.role == "train" for g in bundle.gallery) == 280
    item = bundle.items[1]
    assert (item.id, item.subject, item.countermeasure, item.queries, item.params) == \
        ("r1", "s2", "round:0.01", 121, {"lam": 0.1})
    np.testing.assert_array_equal(np.asarray(Image.open(path / item.image)), images[item.image])
    # gallery photos are the AT&T pixels unchanged
    g = next(g for g in bundle.gallery if g.image == "gallery/s7/3.png")
    np.testing.assert_array_equal(bundle.load_image(g.image), faces.images[faces.index_of(6, 3)])


def edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def bundle_path(faces, tmp_path_factory):
    base = tmp_path_factory.mktemp("base")
    path, _ = make_bundle(faces, base)
    return path


@pytest.fixture
def broken(bundle_path, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(bundle_path, target)
    return target


def test_missing_image_is_named(broken):
    (broken / "items" / "r2.png").unlink()
    with pytest.raises(BundleError, match=r"item 'r2': image items/r2.png is missing"):
        read_bundle(broken)


@pytest.mark.parametrize("change,message", [
    (lambda m: m.update(version=3), "unknown version 3"),
    (lambda m: m["items"][2].update(id="r0"), "item 'r0': duplicate id"),
    (lambda m: m["items"][0].update(image="../../etc/passwd"), "must be a relative path inside the bundle"),
], ids=["version", "duplicate-id", "path-outside"])
def test_bad_manifest_entries_are_named(broken, change, message):
    edit_manifest(broken, change)
    with pytest.raises(BundleError, match=message):
        read_bundle(broken)


def test_wrong_size_is_named(broken):
    Image.new("L", (40, 50)).save(broken / "items" / "r1.png")
    with pytest.raises(BundleError, match=r"item 'r1': items/r1.png is 40x50, expected 92x112"):
        read_bundle(broken)


def test_colour_image_is_refused(broken):
    Image.new("RGB", (92, 112)).save(broken / "items" / "r0.png")
    with pytest.raises(BundleError, match="expected an 8-bit greyscale PNG"):
        read_bundle(broken)


def test_all_problems_are_listed_at_once(broken):
    def change(m):
        m["items"][0]["attack"] = "guess"
        m["items"][1]["subject"] = "s99"
        m["items"][2]["queries"] = "many"
    edit_manifest(broken, change)
    with pytest.raises(BundleError) as err:
        read_bundle(broken)
    assert len(err.value.problems) == 3
    assert "attack 'guess'" in str(err.value) and "'s99' has no image in the gallery" in str(err.value)
    assert "queries must be a number" in str(err.value)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="manifest.json is missing"):
        read_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(BundleError, match="format must be"):
        read_bundle(tmp_path)


def test_a_failed_write_leaves_the_old_bundle_whole(bundle_path, faces, tmp_path):
    before = (bundle_path / "manifest.json").read_text()
    bundle = read_bundle(bundle_path)
    bundle.items.append(Item(id="new", subject="s1", model="mlp", attack="mi-face", countermeasure="none",
                             image="items/new.png"))
    with pytest.raises(BundleError, match="no pixels given"):
        write_bundle(bundle, bundle_path, images={})  # the new image's pixels are missing
    assert (bundle_path / "manifest.json").read_text() == before
    assert read_bundle(bundle_path).items[-1].id == "r2"
    assert not [p for p in bundle_path.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


@pytest.mark.parametrize("attack, ok", [("mi-face+tv", True), ("mi-face-blackbox+tv", True), ("deblur+tv", True),
                                        ("mi-face+blur", False), ("+tv", False), ("mi-face+", False),
                                        ("guess+tv", False)])
def test_an_attack_may_carry_a_known_option(broken, attack, ok):
    edit_manifest(broken, lambda m: m["items"][0].update(attack=attack))
    if ok:
        assert read_bundle(broken).items[0].attack == attack
    else:
        with pytest.raises(BundleError, match=rf"attack '{re.escape(attack)}' must be one of"):
            read_bundle(broken)
