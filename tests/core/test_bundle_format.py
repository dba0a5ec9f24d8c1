"""Bundle version 2: any size and colour, typed deblurring fields, version 1 still read, and every class of bad
manifest or image refused with the entry named, before anything is imported."""
from __future__ import annotations

import json
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mi_harness.bundle import Bundle, BundleError, GalleryImage, Item, dataset_section, read_bundle, write_bundle
from mi_harness.convert import convert
from mi_harness.galleries import GalleryError, from_csv, from_folder


def colour_bundle(tmp_path, size=(48, 60)):
    rng = np.random.default_rng(0)
    images, gallery, items = {}, [], []
    for subject in ("ann", "bob", "cat"):
        for n in (1, 2):
            name = f"gallery/{subject}/{n}.png"
            images[name] = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            gallery.append(GalleryImage(subject, name, "train" if n == 1 else "validation", {"sex": "female"}))
        images[f"items/{subject}.png"] = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        items.append(Item(f"r-{subject}", subject, "gmi", "deblur", "none", f"items/{subject}.png",
                          blur="gaussian:4", source_photo=f"gallery/{subject}/2.png"))
    bundle = Bundle(dataset=dataset_section("toy", size, "RGB"), gallery=gallery, items=items)
    return write_bundle(bundle, tmp_path / "bundle", images), images


def test_a_colour_bundle_of_any_size_round_trips(tmp_path):
    path, images = colour_bundle(tmp_path)
    bundle = read_bundle(path)
    assert bundle.mode == "RGB" and bundle.image_size == (48, 60) and bundle.display_size == (179, 224)
    item = bundle.items[1]
    assert (item.blur, item.source_photo) == ("gaussian:4", "gallery/bob/2.png") and item.params == {}
    assert bundle.gallery[0].attributes == {"sex": "female"}
    np.testing.assert_array_equal(np.asarray(Image.open(path / item.image)), images[item.image])
    assert bundle.load_image(item.image).shape == (60, 48, 3)


def test_version_1_bundles_still_read(tmp_path):
    """A version 1 manifest (AT&T era): no mode or display size, the blur and source photo in params."""
    path, _ = colour_bundle(tmp_path)
    for name in [*path.rglob("*.png")]:
        Image.open(name).convert("L").save(name)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["version"] = 1
    manifest["dataset"] = {"name": "att_faces", "image_size": [48, 60], "split_seed": 0}
    for item in manifest["items"]:
        item["params"] = {"blur": item.pop("blur"), "blurred_photo": item.pop("source_photo")[8:-4] + ".pgm",
                          "lam": 0.1}
    for g in manifest["gallery"]:
        del g["attributes"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    bundle = read_bundle(path)
    assert bundle.mode == "L" and bundle.display_size == (179, 224) and bundle.dataset["split_seed"] == 0
    item = bundle.items[0]
    assert (item.blur, item.source_photo, item.params) == ("gaussian:4", "gallery/ann/2.png", {"lam": 0.1})


def edit(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("change, message", [
    (lambda m: m["dataset"].update(mode="CMYK"), "dataset.mode must be one of L, RGB"),
    (lambda m: m["dataset"].update(image_size=[48, "60"]), "image_size must be [width, height]"),
    (lambda m: m["dataset"].update(image_size=[48000, 60000]), "each side must be 1 to 1024"),
    (lambda m: m["dataset"].update(display_size=[5, 5]), "display_size must be [width, height] in 16..2048"),
    (lambda m: m.update(items={"a": 1}), "items must be a list"),
    (lambda m: m["items"][0].update(subject=["ann"]), "subject must be a non-empty string"),
    (lambda m: m["items"][0].update(id=7), "id must be a non-empty string"),
    (lambda m: m["items"][0].update(queries="many"), "queries must be a number or null"),
    (lambda m: m["items"][0].update(params=[1]), "params must be an object"),
    (lambda m: m["items"][0].update(colour="red"), "unknown field(s) colour"),
    (lambda m: m["items"][0].pop("image"), "missing field(s) image"),
    (lambda m: m["items"][0].update(source_photo="gallery/zed/1.png"), "is not an image of the gallery"),
    (lambda m: m["gallery"][0].update(attributes={"sex": 1}), "attributes must be an object of strings"),
    (lambda m: m["gallery"][0].update(role="test"), "role 'test' must be one of train, validation"),
    (lambda m: m["gallery"][0].update(image="gallery/ann/\x00.png"), "must be a relative path inside the bundle"),
], ids=["mode", "size-type", "huge-size", "display", "items-type", "subject-type", "id-type", "number-type",
        "params-type", "unknown-field", "missing-field", "source-photo", "attributes", "role", "nul-path"])
def test_bad_manifests_are_refused_naming_the_entry(tmp_path, change, message):
    path, _ = colour_bundle(tmp_path)
    edit(path, change)
    with pytest.raises(BundleError) as err:
        read_bundle(path)
    assert message in str(err.value)


def test_a_truncated_image_is_refused_when_the_bundle_is_read(tmp_path):
    path, _ = colour_bundle(tmp_path)
    data = (path / "items" / "bob.png").read_bytes()
    (path / "items" / "bob.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="item 'r-bob': items/bob.png is not a readable image, or it is truncated"):
        read_bundle(path)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` (a decompression bomb's first line)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + \
        chunk(b"IEND", b"")


def test_an_image_declaring_huge_dimensions_is_refused_unread(tmp_path):
    path, _ = colour_bundle(tmp_path)
    (path / "items" / "cat.png").write_bytes(png_declaring(60000, 60000))
    with pytest.raises(BundleError) as err:
        read_bundle(path)
    assert "item 'r-cat': items/cat.png" in str(err.value)


def test_galleries_from_folders_and_csvs_name_every_problem(tmp_path):
    root = tmp_path / "g"
    for identity, files in (("p2", ["a.jpg", "b.png"]), ("p10", ["x.png"]), ("empty", [])):
        (root / identity).mkdir(parents=True)
        for f in files:
            Image.new("RGB", (40, 50), (200, 100, 50)).save(root / identity / f)
    with pytest.raises(GalleryError, match="empty: no photos"):
        from_folder(root)
    shutil.rmtree(root / "empty")
    (root / "p2" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(GalleryError, match="broken.png: is not a readable image"):
        from_folder(root)
    (root / "p2" / "broken.png").unlink()
    gallery = from_folder(root)
    assert gallery.identities == ["p2", "p10"] and gallery.common_size == (40, 50)
    assert [p.key for p in gallery.photos] == ["p2/a", "p2/b", "p10/x"]
    (root / "list.csv").write_text("file,identity,role,sex\np2/a.jpg,p2,train,f\np2/b.png,p2,,f\n"
                                   "p10/x.png,p10,validation,m\n../etc/passwd,p9,,m\n")
    with pytest.raises(GalleryError, match="line 5: file '../etc/passwd' must be a path inside"):
        from_csv(root / "list.csv")
    (root / "list.csv").write_text("file,identity,role,sex\np2/a.jpg,p2,train,f\np2/b.png,p2,,f\n"
                                   "p10/x.png,p10,validation,m\n")
    gallery = from_csv(root / "list.csv")
    roles = gallery.roles(seed=0)
    assert roles["p2/a"] == "train" and roles["p2/b"] == "validation" and roles["p10/x"] == "validation"
    assert gallery.photos[0].attributes == {"sex": "f"}


def test_conversion_refuses_another_aspect_and_resizes_the_same_one(other_dataset, tmp_path):
    gallery = from_folder(other_dataset / "gallery")
    big = tmp_path / "recon"
    for k in (0, 1):
        (big / str(k)).mkdir(parents=True)
        Image.open(other_dataset / "recon" / str(k) / "0.png").resize((128, 128)).save(big / str(k) / "0.png")
    bundle = convert(tmp_path / "b", gallery, folder=big, class_map=other_dataset / "classes.json")
    assert bundle.image_size == (64, 64) and bundle.mode == "RGB"
    assert bundle.items[0].params["resized_from"] == "128x128" and bundle.items[0].subject == "person-ada"
    Image.new("RGB", (64, 80)).save(big / "1" / "0.png")
    with pytest.raises(BundleError, match="is 64x80, another aspect than the bundle's 64x64"):
        convert(tmp_path / "c", gallery, folder=big, class_map=other_dataset / "classes.json")
    (big / "7").mkdir()
    Image.new("RGB", (64, 64)).save(big / "7" / "0.png")
    (tmp_path / "map.csv").write_text("class,identity\n0,person-ada\n1,person-bo\n")
    with pytest.raises(BundleError, match="class '7' is not in the class map"):
        convert(tmp_path / "d", gallery, folder=big, class_map=tmp_path / "map.csv")
    grey = convert(tmp_path / "e", gallery, folder=other_dataset / "recon", class_map=other_dataset / "classes.json",
                   grey=True, size=(32, 32))
    assert grey.mode == "L" and grey.image_size == (32, 32)


def test_a_truncated_gallery_photo_stops_the_conversion_and_writes_nothing(other_dataset, tmp_path):
    gallery_dir = tmp_path / "gallery"
    shutil.copytree(other_dataset / "gallery", gallery_dir)
    photo = gallery_dir / "person-cy" / "4.jpg"
    whole = photo.read_bytes()
    photo.write_bytes(whole[:100])  # not even a header: refused when the gallery is opened
    with pytest.raises(GalleryError, match=r"person-cy/4.jpg: is not a readable image"):
        from_folder(gallery_dir)
    photo.write_bytes(whole[: len(whole) * 2 // 3])  # the header survives, the pixels do not
    with pytest.raises(BundleError, match=r"gallery/person-cy/4.png: its source image cannot be read"):
        convert(tmp_path / "out", from_folder(gallery_dir), folder=other_dataset / "recon",
                class_map=other_dataset / "classes.json")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
