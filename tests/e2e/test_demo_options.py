"""`mi-harness demo` refuses a plan it cannot run before it does anything."""
from click.testing import CliRunner

from mi_harness.cli import main


def test_a_bad_plan_is_refused_with_its_reason_and_writes_nothing(tmp_path):
    runner = CliRunner()
    work = tmp_path / "work"
    for args, message in ((["--models", "softmax,vgg"], "unknown model vgg"),
                          (["--deblur", "softmax"], "MODEL:BLUR"),
                          (["--labels", "0-3"], "subjects are numbered 1 to 40"),
                          (["--dp", "softmax"], "MODEL:EPSILON"),
                          (["--dp", "softmax:-1"], "epsilon"),
                          (["--face-models", "softmax"], "the faces setting is for mlp only, not softmax"),
                          (["--models", "", "--smooth-models", "", "--face-models", "", "--blackbox-models", "",
                            "--deblur", "", "--dp", ""], "no attack to run")):
        result = runner.invoke(main, ["demo", "--work", str(work), "--models-dir", str(tmp_path / "m"), *args])
        assert result.exit_code in (1, 2) and message in result.output, result.output
    assert not work.exists() and not (tmp_path / "m").exists()


def test_a_dp_checkpoint_of_other_settings_is_refused_not_mislabelled(tmp_path, faces_dir):
    runner, models = CliRunner(), tmp_path / "m"
    env = {"MI_FACES_DIR": str(faces_dir)}
    trained = runner.invoke(main, ["train", "--model", "softmax", "--dp-epsilon", "8", "--dp-delta", "1e-6",
                                   "--max-epochs", "1", "--out", str(models)], env=env)
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(main, ["demo", "--work", str(tmp_path / "work"), "--models-dir", str(models), "--models", "",
                                  "--smooth-models", "", "--face-models", "", "--blackbox-models", "", "--deblur", "",
                                  "--dp", "softmax:8"], env=env)
    assert result.exit_code == 1 and "trained with other DP settings (delta 1e-06 there, 1e-05 asked)" in result.output
    assert sorted(p.name for p in models.iterdir()) == ["softmax-dp8.pt"]
