"""`mi-harness demo` refuses a plan it cannot run before it does anything."""
from click.testing import CliRunner

from attack.cli import main


def test_a_bad_plan_is_refused_with_its_reason_and_writes_nothing(tmp_path):
    runner = CliRunner()
    work = tmp_path / "work"
    for args, message in ((["--models", "softmax,vgg"], "unknown model vgg"),
                          (["--deblur", "softmax"], "MODEL:BLUR"),
                          (["--labels", "0-3"], "subjects are numbered 1 to 40"),
                          (["--dp", "softmax"], "MODEL:EPSILON"),
                          (["--dp", "softmax:-1"], "epsilon"),
                          (["--models", "", "--smooth-models", "", "--blackbox-models", "", "--deblur", "", "--dp", ""],
                           "no attack to run")):
        result = runner.invoke(main, ["demo", "--work", str(work), "--models-dir", str(tmp_path / "m"), *args])
        assert result.exit_code in (1, 2) and message in result.output, result.output
    assert not work.exists() and not (tmp_path / "m").exists()
