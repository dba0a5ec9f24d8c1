"""DP-SGD for the face models: the accountant's ε, the cost in accuracy, the DAE's private pretraining, and
how a DP model's attacks are labelled in bundles."""
import pytest
import torch
import torch.nn.functional as F

from attack.checkpoints import load_checkpoint, save_checkpoint
from attack.countermeasures import item_countermeasure, parse_countermeasure
from attack.faces import Split
from attack.models import StackedDAE
from attack.private_training import (
    PrivacyConfig,
    TiedDenoisingLayer,
    dp_train_config,
    private_checkpoint_metadata,
    tied_layer_norm_sample,
    train_private_model,
)
from attack.reconstruct import AttackRequest, run_attack, save_to_bundle
from mi_harness.bundle import read_bundle


def test_the_tied_layers_per_photo_gradient_norms_are_autograds():
    torch.manual_seed(0)
    layer = TiedDenoisingLayer(StackedDAE(layers=(16, 4)), 0)
    x, clean = torch.rand(3, 10304), torch.rand(3, 10304)
    expected = []
    for i in range(3):
        loss = F.binary_cross_entropy(layer(x[i:i + 1]), clean[i:i + 1], reduction="sum")
        grads = torch.autograd.grad(loss, [layer.weight, layer.bias, layer.decoder_bias])
        expected.append([g.norm() for g in grads])
    out = layer(x).detach().requires_grad_(True)
    (backprops,) = torch.autograd.grad(F.binary_cross_entropy(out, clean, reduction="sum"), out)
    norms = tied_layer_norm_sample(layer, [x], backprops)
    got = torch.stack([norms[layer.weight], norms[layer.bias], norms[layer.decoder_bias]], 1)
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def nearly_and_tiny(faces):
    """Softmax trained by the same DP-SGD pipeline at a huge ε (almost no noise) and at a tiny one."""
    split = Split.make(0)
    cfg = dp_train_config("softmax", lr=0.5, max_epochs=20)
    return {eps: train_private_model("softmax", faces, split, cfg, PrivacyConfig(eps)) for eps in (1e5, 0.3)}


def test_a_tiny_epsilon_costs_accuracy_and_the_accountant_reports_the_epsilon_asked_for(nearly_and_tiny):
    (_, loose, loose_report), (_, tight, tight_report) = nearly_and_tiny[1e5], nearly_and_tiny[0.3]
    assert loose.validation_accuracy > 0.4
    assert tight.validation_accuracy < 0.1  # chance is 0.025
    assert tight_report["noise_multiplier"] > 20 * loose_report["noise_multiplier"]
    for eps, report in ((1e5, loose_report), (0.3, tight_report)):
        assert report["epsilon"] == eps
        assert eps * 0.98 <= report["spent_epsilon"] <= eps  # Opacus's search stops within its tolerance below
        assert report["steps"] == 20 * 5 and report["sample_rate"] == 0.2  # 280 photos, expected batch 56
    assert tight.stopped_by == "fixed epochs (DP)" and tight.epochs == 20


def test_the_dae_is_pretrained_privately_and_keeps_no_opacus_state(faces):
    torch.manual_seed(0)
    cfg = dp_train_config("dae", max_epochs=1, pretrain_epochs=1, batch_size=140)
    initial = StackedDAE(layers=(32, 8)).state_dict()
    model, result, report = train_private_model("dae", faces, Split.make(0), cfg, PrivacyConfig(3.0), layers=(32, 8))
    assert report["phase_epochs"] == [1, 1, 1] and report["steps"] == 3 * 2
    assert 2.9 <= report["spent_epsilon"] <= 3.0  # one budget for pretraining and fine-tuning together
    assert result.pretrain_epochs == [1, 1]
    for name in ("encoders.0.weight", "decoder_biases.0", "decoder_biases.1", "head.weight"):
        assert not torch.equal(model.state_dict()[name], initial[name]), name
    assert not any(hasattr(p, "grad_sample") or hasattr(p, "_forward_counter") for p in model.parameters())
    assert not model._forward_hooks and not model.encoders[0]._forward_hooks and not model.encoders[0]._backward_hooks


def test_attacks_on_a_dp_model_carry_its_countermeasure_in_the_bundle(nearly_and_tiny, faces, tmp_path):
    model, result, report = nearly_and_tiny[0.3]
    split = Split.make(0)
    path = save_checkpoint(tmp_path / "softmax-dp0.3.pt", model, private_checkpoint_metadata(
        model, split, dp_train_config("softmax"), result, faces, report))
    assert load_checkpoint(path)[1]["privacy"]["spec"] == "dp:eps=0.3"
    white = run_attack(AttackRequest(path, [2], mi_face={"alpha": 5}, show_progress=False), faces)
    black = run_attack(AttackRequest(path, [2], access="blackbox", countermeasure="round:0.01",
                                     mi_face={"alpha": 2}, estimator_params={"samples": 2}, show_progress=False), faces)
    save_to_bundle(white, tmp_path / "b")
    save_to_bundle(black, tmp_path / "b")
    items = {i.countermeasure: i for i in read_bundle(tmp_path / "b").items}
    assert set(items) == {"dp:eps=0.3", "dp:eps=0.3+round:0.01"}
    assert items["dp:eps=0.3"].id == "softmax-mi-face-dp_eps_0.3-s3"
    assert items["dp:eps=0.3"].params["checkpoint"]["privacy"]["spent_epsilon"] == report["spent_epsilon"]


def test_dp_is_a_property_of_the_model_not_an_api_countermeasure():
    with pytest.raises(ValueError, match="property of the trained model"):
        parse_countermeasure("dp:eps=8")
    assert item_countermeasure("none", None) == "none"
    assert item_countermeasure("round:0.01", None) == "round:0.01"
    assert item_countermeasure("none", {"spec": "dp:eps=8"}) == "dp:eps=8"
    assert item_countermeasure("label-only", {"spec": "dp:eps=1"}) == "dp:eps=1+label-only"


@pytest.mark.parametrize("settings,message", [
    ({"epsilon": 0}, "epsilon must be a positive number"),
    ({"epsilon": float("inf")}, "epsilon must be a positive number"),
    ({"epsilon": 8, "delta": 1}, "delta must be in (0, 1)"),
    ({"epsilon": 8, "max_grad_norm": -1}, "clipping norm must be a positive number"),
    ({"epsilon": 8, "accountant": "moments"}, "accountant must be one of rdp, prv"),
])
def test_bad_privacy_settings_are_refused_naming_the_problem(settings, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PrivacyConfig(**settings)
