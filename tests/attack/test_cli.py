import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mi_harness.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, faces_dir):
    models = tmp_path_factory.mktemp("models")
    result = CliRunner().invoke(main, ["train", "--model", "softmax", "--faces", str(faces_dir), "--out", str(models),
                                       "--max-epochs", "40", "--patience", "5"])
    assert result.exit_code == 0, result.output
    return models, result.output


def run(*args, faces_dir=None):
    extra = ["--faces", str(faces_dir)] if faces_dir else []
    return CliRunner().invoke(main, [*args, *extra])


def test_train_reports_accuracies_and_reuses_checkpoints(trained, faces_dir):
    models, output = trained
    assert "softmax: train accuracy 1.000, validation accuracy 0.9" in output and "(plateau)" in output
    assert (models / "softmax.pt").is_file()
    again = run("train", "--model", "softmax", "--out", str(models), faces_dir=faces_dir)
    assert again.exit_code == 0 and "reusing" in again.output


def test_attack_then_evaluate(trained, faces_dir, tmp_path):
    models, _ = trained
    bundle = tmp_path / "bundle"
    result = run("attack", "--model", "softmax", "--models-dir", str(models), "--labels", "1-3,7",
                 "--out", str(bundle), faces_dir=faces_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("4 reconstructions") and "4 reach confidence 0.99" in result.stdout
    result = run("attack", "--model", "softmax", "--models-dir", str(models), "--labels", "2",
                 "--countermeasure", "round:0.01", "--access", "blackbox", "--alpha", "3", "--nes-samples", "4",
                 "--out", str(bundle), faces_dir=faces_dir)
    assert result.exit_code == 0, result.output
    checked = run("bundle", "check", str(bundle)).stdout.splitlines()
    assert checked[0].endswith("valid, 5 items, 400 gallery photos (att_faces, 92x112 grey)")
    flagged = [line.split()[0] for line in checked[2:]]
    assert flagged in ([], ["softmax-mi-face-blackbox-round_0.01-s2"])  # the white-box faces are usable
    out_json, out_csv, out_items = tmp_path / "e.json", tmp_path / "e.csv", tmp_path / "items.csv"
    result = run("evaluate", str(bundle), "--json", str(out_json), "--csv", str(out_csv), "--items", str(out_items),
                 faces_dir=faces_dir)
    assert result.exit_code == 0, result.output
    rows = json.loads(out_json.read_text())
    white = next(r for r in rows if r["attack"] == "mi-face")
    assert (white["n"], white["unusable"], white["top1_pixel"]) == (4, 0, 1.0)
    assert 0 <= white["top1_deep"] <= white["top5_deep"] <= 1 and 0 < white["deep_distance"] < 2
    black = next(r for r in rows if r["attack"] == "mi-face-blackbox")
    assert black["countermeasure"] == "round:0.01" and black["unusable"] == len(flagged)
    if flagged:  # an unusable item fails every judge
        assert black["top1_pixel"] == black["top1_deep"] == black["top5_eigen"] == 0
    assert len(list(csv.DictReader(out_csv.open()))) == 2
    items = list(csv.DictReader(out_items.open()))
    assert len(items) == 5 and all(i["deep_nearest"].startswith("s") for i in items)
    table = result.stdout.splitlines()
    assert table[0].split()[:8] == ["model", "attack", "countermeasure", "blur", "n", "unus.", "top1", "deep"]
    assert table[2].split()[:6] == ["softmax", "mi-face", "none", "-", "4", "0"]
    assert "a face recogniser would name them" in result.stdout and "a signal is present" in result.stdout


def test_convert_the_paper_reconstructions(paper_reconstructions, faces_dir, tmp_path):
    result = run("bundle", "convert", str(paper_reconstructions), "--csv", str(paper_reconstructions / "manifest.csv"),
                 "--where", "kind=final_image", "--where", "model=softmax", "--out", str(tmp_path / "p"),
                 faces_dir=faces_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"90 reconstructions and 400 gallery photos (92x112 grey) -> {tmp_path / 'p'}"


@pytest.mark.parametrize("args,code,message", [
    (["attack", "--model", "softmax", "--labels", "0-3"], 2, "subjects are numbered 1 to the number of identities"),
    (["attack", "--model", "softmax", "--labels", "one"], 2, "use subject numbers"),
    (["attack", "--model", "softmax", "--checkpoint", "x.pt"], 2, "exactly one of --model or --checkpoint"),
    (["attack", "--model", "softmax", "--query-budget", "10"], 2, "applies to --access blackbox"),
    (["attack", "--checkpoint", "nothing.pt"], 1, "no such checkpoint"),
    (["attack", "--model", "softmax", "--device", "cuda:0"], 2, "CUDA is not available"),
    (["evaluate", "."], 1, "manifest.json is missing"),
    (["bundle", "convert", ".", "--csv", "pyproject.toml", "--out", "x", "--where", "kind"], 2, "COLUMN=VALUE"),
])
def test_bad_input_gets_a_clear_message_not_a_traceback(args, code, message, monkeypatch):
    if "cuda" in " ".join(args):
        import torch
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_bad_countermeasure_is_refused_before_any_work(trained, faces_dir, tmp_path):
    models, _ = trained
    result = run("attack", "--model", "softmax", "--models-dir", str(models), "--countermeasure", "round:2",
                 "--out", str(tmp_path / "b"), faces_dir=faces_dir)
    assert result.exit_code == 1 and "outside (0, 1)" in result.output
    assert not (tmp_path / "b").exists()


def test_missing_faces_say_where_they_were_looked_for(tmp_path):
    result = run("train", "--faces", str(tmp_path / "none"))
    assert result.exit_code == 1 and "no AT&T faces found" in result.output and str(tmp_path / "none") in result.output


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "mi-harness"
    done = subprocess.run([str(script), "attack", "--model", "softmax", "--labels", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "subjects are numbered 1 to the number of identities" in done.stderr
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and all(c in done.stdout for c in ("train", "attack", "evaluate", "fetch-faces"))
