"""A short train-and-invert on the real AT&T faces, through the same code the CLI uses."""
import numpy as np
import pytest
import torch

from attack.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from attack.deblur import Blur
from attack.faces import Split
from attack.reconstruct import AttackRequest, run_attack, save_to_bundle
from attack.training import TrainConfig, checkpoint_metadata, train_model
from mi_harness.bundle import read_bundle
from mi_harness.evaluate import standardise

LABELS = [0, 5, 17, 33]


@pytest.fixture(scope="module")
def softmax_checkpoint(faces, tmp_path_factory):
    split = Split.make(0)
    cfg = TrainConfig.for_architecture("softmax", max_epochs=60, patience=10)
    model, result = train_model("softmax", faces, split, cfg)
    path = tmp_path_factory.mktemp("models") / "softmax.pt"
    save_checkpoint(path, model, checkpoint_metadata(model, split, cfg, result, faces))
    return path, result


def test_softmax_learns_the_faces(softmax_checkpoint):
    _, result = softmax_checkpoint
    assert result.train_accuracy == 1.0
    assert result.validation_accuracy > 0.85
    assert result.stopped_by == "plateau" and result.epochs < 60


def test_checkpoint_round_trip_keeps_weights_and_metadata(softmax_checkpoint, faces, tmp_path):
    path, result = softmax_checkpoint
    model, meta = load_checkpoint(path)
    assert meta["model"] == {"architecture": "softmax"}
    assert meta["result"]["validation_accuracy"] == result.validation_accuracy
    assert Split.from_json(meta["split"]) == Split.make(0)
    x = torch.from_numpy(faces.flat(np.arange(0, 400, 37)))
    expected = faces.labels[np.arange(0, 400, 37)]
    assert (model(x).argmax(1).numpy() == expected).mean() > 0.8
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a mi-harness checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_inverted_faces_are_classified_as_their_label_and_look_like_that_person(softmax_checkpoint, faces):
    path, _ = softmax_checkpoint
    output = run_attack(AttackRequest(path, LABELS, show_progress=False), faces)
    model, _ = load_checkpoint(path)
    images = torch.stack([inv.image for inv in output.inversions])
    assert model(images).argmax(1).tolist() == LABELS
    similarity = standardise(images.numpy()) @ standardise(faces.images).T / images.shape[1]
    for row, label in enumerate(LABELS):
        per_subject = [similarity[row, faces.labels == s].mean() for s in range(40)]
        assert int(np.argmax(per_subject)) == label


def test_attack_items_go_into_a_bundle_and_reruns_replace_them(softmax_checkpoint, faces, tmp_path):
    path, _ = softmax_checkpoint
    out = tmp_path / "bundle"
    first = run_attack(AttackRequest(path, [1, 2], show_progress=False), faces)
    save_to_bundle(first, out)
    rounded = run_attack(AttackRequest(path, [1], access="blackbox", countermeasure="round:0.05",
                                       mi_face={"alpha": 5, "query_budget": 1000},
                                       estimator_params={"samples": 5}, show_progress=False), faces)
    save_to_bundle(rounded, out)
    save_to_bundle(first, out)  # the same configuration again: replaced, not duplicated
    bundle = read_bundle(out)
    assert sorted(i.id for i in bundle.items) == [
        "softmax-mi-face-blackbox-round_0.05-s2", "softmax-mi-face-none-s2", "softmax-mi-face-none-s3"]
    black = next(i for i in bundle.items if i.attack == "mi-face-blackbox")
    assert black.queries <= 1000 and black.params["estimator"] == "nes" and black.params["access"] == "blackbox"
    white = next(i for i in bundle.items if i.id.endswith("none-s2"))
    assert white.queries == white.iterations + 1 and white.confidence >= 0.99


def test_deblurring_keeps_the_blurred_photo_and_lowers_the_cost(softmax_checkpoint, faces, tmp_path):
    path, _ = softmax_checkpoint
    output = run_attack(AttackRequest(path, LABELS, blur="gaussian:2", show_progress=False), faces,
                        keep_history=True)
    split = Split.make(0)
    for label, item, inv in zip(LABELS, output.items, output.inversions):
        number = split.validation[label][0]
        assert item.attack == "deblur" and item.source_photo == f"gallery/s{label + 1}/{number}.png"
        # the side information stored is the blurred validation photo, untouched by the search
        photo = torch.from_numpy(faces.images[faces.index_of(label, number)].reshape(1, -1))
        expected = np.round(Blur("gaussian", 2)(photo).numpy().reshape(112, 92) * 255)
        np.testing.assert_allclose(output.images[item.aux_image], expected, atol=1)
        assert inv.stopped_by in ("alpha", "plateau") and inv.iterations > 10
        assert inv.cost < 0.5 * inv.history[0]  # the blur-consistency term, large at x_0, is brought down
    detail = lambda x: np.abs(np.diff(x.reshape(-1, 112, 92), axis=2)).mean()  # noqa: E731
    blurred = np.stack([output.images[i.aux_image] for i in output.items]) / 255.0
    assert detail(np.stack([inv.image.numpy() for inv in output.inversions])) > detail(blurred)
    save_to_bundle(output, tmp_path / "b")
    assert read_bundle(tmp_path / "b").items[0].aux_image.endswith(".blurred.png")


@pytest.mark.parametrize("architecture,config", [("mlp", {"hidden": 64}), ("dae", {"layers": (128, 32)})])
def test_small_mlp_and_dae_train_and_invert(architecture, config, faces, tmp_path):
    split = Split.make(1)
    cfg = TrainConfig.for_architecture(architecture, max_epochs=30, patience=5, pretrain_epochs=3)
    model, result = train_model(architecture, faces, split, cfg, **config)
    assert result.train_accuracy > 0.5
    if architecture == "dae":
        assert result.pretrain_epochs == [3, 3]
    path = save_checkpoint(tmp_path / f"{architecture}.pt", model,
                           checkpoint_metadata(model, split, cfg, result, faces))
    overrides = {"alpha": 40, "process_every": 10} if architecture == "dae" else {"alpha": 40}
    output = run_attack(AttackRequest(path, [3, 8], mi_face=overrides, show_progress=False), faces)
    assert all(inv.image.shape == (112 * 92,) for inv in output.inversions)
    if architecture == "dae":
        assert output.items[0].params["process"]["name"] == "process-dae"
        assert all(0 <= inv.image.min() and inv.image.max() <= 1 for inv in output.inversions)
