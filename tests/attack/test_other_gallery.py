"""The paper's attack on another dataset: train on any gallery at a stated input size, invert, and get a bundle of
that gallery (its identities, its size, roles from the model's split) that the judges and the survey read."""
from __future__ import annotations

import json

from click.testing import CliRunner

from attack.checkpoints import load_checkpoint
from mi_harness.bundle import read_bundle
from mi_harness.cli import main
from tests.conftest import OTHER_IDENTITIES


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_train_and_attack_a_model_of_another_gallery(other_dataset, tmp_path):
    models, bundle_dir = tmp_path / "models", tmp_path / "bundle"
    refused = run("train", "--model", "softmax", "--gallery", other_dataset / "gallery", "--out", models)
    assert refused.exit_code == 2 and "--input-size" in refused.output and not models.exists()
    trained = run("train", "--model", "softmax", "--gallery", other_dataset / "gallery", "--input-size", "32x40",
                  "--out", models)
    assert trained.exit_code == 0, trained.output
    model, meta = load_checkpoint(models / "softmax.pt")
    assert (model.pixels, model.classes) == (32 * 40, 12)
    assert meta["gallery"]["identities"] == OTHER_IDENTITIES and meta["gallery"]["input_size"] == [32, 40]
    assert sum(len(v["train"]) for v in meta["split"]["subjects"].values()) == 12 * 7

    too_far = run("attack", "--checkpoint", models / "softmax.pt", "--labels", "12-13", "--out", bundle_dir)
    assert too_far.exit_code == 1 and "beyond the model's 12 identities" in too_far.output
    attacked = run("attack", "--checkpoint", models / "softmax.pt", "--labels", "1-12", "--out", bundle_dir)
    assert attacked.exit_code == 0, attacked.output
    bundle = read_bundle(bundle_dir)
    assert bundle.image_size == (32, 40) and bundle.mode == "L" and bundle.dataset["name"] == "gallery"
    assert [i.subject for i in bundle.items] == OTHER_IDENTITIES
    assert len(bundle.gallery) == 120 and sum(g.role == "train" for g in bundle.gallery) == 84
    trained_on = {(s, n) for s, v in meta["split"]["subjects"].items() for n in v["train"]}
    assert {(g.subject, int(g.image.rsplit("/", 1)[1][:-4])) for g in bundle.gallery if g.role == "train"} == \
        trained_on  # the bundle's roles are the photos the model learned, not a new draw
    assert run("attack", "--checkpoint", models / "softmax.pt", "--labels", "1", "--blur", "gaussian:2",
               "--out", bundle_dir).exit_code == 1  # deblurring is built for the AT&T photos: refused, not wrong

    judged = run("evaluate", bundle_dir, "--json", tmp_path / "judges.json")
    assert judged.exit_code == 0, judged.output
    (row,) = json.loads((tmp_path / "judges.json").read_text())
    assert row["n"] == 12 and row["top1_pixel"] >= 0.75  # white-box softmax: a signal, as on the AT&T faces
