"""The named MLP setting whose reconstructions are faces (train --recipe faces, attack --preset faces), and the
exact span-trained SGD that makes training it fast (attack/training.py, SpanTrainedLayer)."""
import json

import pytest
import torch
from click.testing import CliRunner

import attack.training as training
from attack.faces import Split
from attack.models import build_model
from attack.private_training import PrivacyConfig, checkpoint_name
from attack.training import TrainConfig, input_layer, span_init_, train_model
from mi_harness.cli import main

HIDDEN = 64


@pytest.mark.parametrize("overrides", [{}, {"input_init": "span", "weight_decay": 5e-3}])
def test_span_trained_sgd_is_sgd_on_the_weights(faces, monkeypatch, overrides):
    """The same model as SGD that updates W itself, to rounding, with and without weight decay."""
    split = Split.make(0)
    cfg = TrainConfig.for_architecture("mlp", max_epochs=3, **overrides)
    fast, fast_result = train_model("mlp", faces, split, cfg, hidden=HIDDEN)
    monkeypatch.setattr(training, "SPAN_TRAINED", ())
    plain, plain_result = train_model("mlp", faces, split, cfg, hidden=HIDDEN)
    torch.manual_seed(cfg.seed)  # the draw both started from
    start = input_layer(build_model("mlp", hidden=HIDDEN)).requires_grad_(False)
    if cfg.input_init == "span":
        span_init_(start, torch.from_numpy(faces.flat(split.indices(faces, "train"))))
    moved = (input_layer(plain).weight - start.weight).norm()
    assert moved > 1e-2 * start.weight.norm()  # SGD moved W, so agreement below is not two untouched starts
    for (name, a), (_, b) in zip(fast.state_dict().items(), plain.state_dict().items()):
        assert (a - b).abs().max() < 1e-4 * b.abs().max(), name
    assert fast_result.train_loss == pytest.approx(plain_result.train_loss, rel=1e-4)


def test_the_faces_preset_is_its_own_attack_for_people():
    from pathlib import Path

    from attack.reconstruct import AttackRequest, attack_name, mi_face_config
    from mi_harness.bundle import known_attack

    faces = mi_face_config("mlp", False, {}, "faces")
    assert (faces.confidence_term, faces.step, faces.start_value, faces.tv_weight) == ("log", "normalized", 0.5, 0)
    request = AttackRequest(Path("m.pt"), [0], preset="faces")
    with_prior = mi_face_config("mlp", False, {"tv_weight": 0.1}, "faces")
    names = attack_name(request, faces), attack_name(request, with_prior)
    assert names == ("mi-face+faces", "mi-face+faces+tv") and all(known_attack(name) for name in names)


def test_the_faces_recipe_is_the_measured_setting_and_options_win():
    cfg = TrainConfig.for_architecture("mlp", "faces")
    assert (cfg.recipe, cfg.input_init, cfg.weight_decay, cfg.max_epochs) == ("faces", "span", 5e-3, 120)
    assert TrainConfig.for_architecture("mlp", "faces", max_epochs=7).max_epochs == 7
    assert TrainConfig.for_architecture("mlp").recipe == "paper"
    assert checkpoint_name("mlp", None, "faces") == "mlp-faces.pt" and checkpoint_name("mlp", None) == "mlp.pt"


@pytest.mark.parametrize("call,message", [
    (lambda: TrainConfig.for_architecture("softmax", "faces"), "'faces' recipe is for mlp only, not softmax"),
    (lambda: TrainConfig(recipe="nice"), "recipe must be one of paper, faces, got 'nice'"),
    (lambda: checkpoint_name("mlp", PrivacyConfig(8.0), "faces"), "DP-SGD trains with its own settings"),
])
def test_a_recipe_where_it_does_not_apply_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_train_and_attack_with_the_faces_setting(faces_dir, tmp_path):
    models, bundle = tmp_path / "models", tmp_path / "bundle"
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--model", "mlp", "--recipe", "faces", "--max-epochs", "2",
                                   "--faces", str(faces_dir), "--out", str(models)])
    assert trained.exit_code == 0, trained.output
    assert [p.name for p in models.iterdir()] == ["mlp-faces.pt"]  # the paper MLP's mlp.pt is left alone
    attacked = runner.invoke(main, ["attack", "--model", "mlp", "--recipe", "faces", "--preset", "faces",
                                    "--models-dir", str(models), "--labels", "1-2", "--alpha", "3",
                                    "--faces", str(faces_dir), "--out", str(bundle)])
    assert attacked.exit_code == 0, attacked.output
    items = json.loads((bundle / "manifest.json").read_text())["items"]
    assert [(i["model"], i["attack"]) for i in items] == [("mlp-faces", "mi-face+faces")] * 2
    params = items[0]["params"]
    assert params["checkpoint"]["recipe"] == "faces" and params["preset"] == "faces"
    assert (params["confidence_term"], params["step"], params["start_value"]) == ("log", "normalized", 0.5)
    paper = runner.invoke(main, ["attack", "--checkpoint", str(models / "mlp-faces.pt"), "--labels", "1",
                                 "--alpha", "2", "--faces", str(faces_dir), "--out", str(bundle)])
    assert paper.exit_code == 0, paper.output
    items = json.loads((bundle / "manifest.json").read_text())["items"]
    assert ("mlp-faces", "mi-face") in {(i["model"], i["attack"]) for i in items}  # another condition


@pytest.mark.parametrize("args,message", [
    (["train", "--model", "softmax", "--recipe", "faces"], "the faces recipe is for mlp only, not softmax"),
    (["train", "--model", "mlp", "--recipe", "faces", "--dp-epsilon", "8"], "does not apply with --dp-epsilon"),
    (["attack", "--checkpoint", "x.pt", "--recipe", "faces"], "--recipe applies to --model"),
])
def test_the_recipe_options_refuse_what_does_not_apply(args, message, tmp_path):
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()
