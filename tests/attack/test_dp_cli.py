"""`mi-harness train --dp-epsilon`: a distinctly named checkpoint with its privacy record, and clear refusals."""
import pytest
import torch
from click.testing import CliRunner

from mi_harness.bundle import read_bundle
from mi_harness.cli import main


def run(*args, faces_dir=None):
    extra = ["--faces", str(faces_dir)] if faces_dir else []
    return CliRunner().invoke(main, [*args, *extra])


def test_dp_training_writes_its_own_checkpoint_and_attacks_on_it_say_dp(faces_dir, tmp_path):
    models, bundle = tmp_path / "models", tmp_path / "bundle"
    result = run("train", "--model", "softmax", "--dp-epsilon", "8", "--max-epochs", "2", "--out", str(models),
                 faces_dir=faces_dir)
    assert result.exit_code == 0, result.output
    assert "DP-SGD ε=8, δ=1e-05 (accountant rdp: ε=7.9" in result.output and "softmax-dp8.pt" in result.output
    assert sorted(p.name for p in models.iterdir()) == ["softmax-dp8.pt"]  # the non-private name is left alone
    meta = torch.load(models / "softmax-dp8.pt", weights_only=True)["metadata"]
    assert meta["privacy"]["spec"] == "dp:eps=8" and meta["privacy"]["delta"] == 1e-5
    assert meta["train_config"]["max_epochs"] == 2 and meta["result"]["stopped_by"] == "fixed epochs (DP)"
    again = run("train", "--model", "softmax", "--dp-epsilon", "8", "--out", str(models), faces_dir=faces_dir)
    assert "reusing" in again.output
    before = (models / "softmax-dp8.pt").read_bytes()
    other = run("train", "--model", "softmax", "--dp-epsilon", "8", "--dp-delta", "1e-6", "--out", str(models),
                faces_dir=faces_dir)  # the same name, other settings: its attacks would be mislabelled
    assert other.exit_code == 1 and "trained with other DP settings (delta 1e-05 there, 1e-06 asked)" in other.output
    assert (models / "softmax-dp8.pt").read_bytes() == before

    result = run("attack", "--checkpoint", str(models / "softmax-dp8.pt"), "--labels", "4", "--alpha", "3",
                 "--out", str(bundle), faces_dir=faces_dir)
    assert result.exit_code == 0, result.output
    assert [i.countermeasure for i in read_bundle(bundle).items] == ["dp:eps=8"]


@pytest.mark.parametrize("args,code,message", [
    (["--dp-epsilon", "0"], 1, "epsilon must be a positive number, got 0.0"),
    (["--dp-epsilon", "-1"], 1, "epsilon must be a positive number"),
    (["--dp-epsilon", "inf"], 1, "epsilon must be a positive number"),
    (["--dp-epsilon", "8", "--dp-delta", "1"], 1, "delta must be in (0, 1)"),
    (["--dp-epsilon", "8", "--dp-delta", "0"], 1, "delta must be in (0, 1)"),
    (["--dp-epsilon", "8", "--dp-max-grad-norm", "0"], 1, "clipping norm must be a positive number"),
    (["--dp-epsilon", "8", "--dp-batch-size", "0"], 2, "the batch size must be at least 1"),
    (["--dp-epsilon", "8", "--patience", "5"], 2, "DP training runs fixed epochs"),
    (["--dp-delta", "1e-5"], 2, "--dp-delta only apply with --dp-epsilon"),
    (["--dp-epsilon", "8", "--dp-accountant", "moments"], 2, "Invalid value for '--dp-accountant'"),
    (["--dp-epsilon", "8", "--dp-delta", "0.01"], 1, "delta = 0.01 is not below 1/n = 1/280"),
    (["--dp-epsilon", "8", "--dp-batch-size", "1000"], 1, "between 1 and the 280 training photos"),
    (["--dp-epsilon", "0.01"], 1, "below what the rdp accountant can certify"),
])
def test_bad_dp_options_get_a_clear_message_and_write_nothing(args, code, message, faces_dir, tmp_path):
    result = run("train", "--model", "softmax", "--out", str(tmp_path / "m"), *args, faces_dir=faces_dir)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("args,message", [
    (["--countermeasure", "dp:eps=8"], "property of the trained model"),
    (["--door", "latent"], "--door applies to --access blackbox"),
])
def test_attack_refuses_dp_as_an_api_countermeasure_and_a_door_without_black_box(args, message, tmp_path):
    result = run("attack", "--model", "softmax", "--models-dir", str(tmp_path), *args)
    assert result.exit_code in (1, 2) and message in result.output, result.output
