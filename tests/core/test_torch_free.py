"""The survey and the analysis run without the attack stack: every command a lab's survey server or an analyst needs
works with torch and the attack package made unimportable, and a non-editable install carries its migrations."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.survey_app.conftest import make_bundle

ROOT = Path(__file__).resolve().parents[2]
BLOCKER = textwrap.dedent("""
    import importlib.abc, sys

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "attack", "opacus"):
                raise ImportError(f"{name} is blocked: this command must not need it")
            return None

    sys.meta_path.insert(0, Refuse())
""")


@pytest.fixture(scope="module")
def blocked_env(tmp_path_factory):
    """An environment whose Python refuses to import torch, opacus or attack (a sitecustomize on PYTHONPATH)."""
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}


def cli(env, *args, cwd=None, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "mi_harness", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    if check:
        assert done.returncode == 0, f"mi-harness {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_the_blocker_works(blocked_env):
    done = subprocess.run([sys.executable, "-c", "import torch"], env=blocked_env, capture_output=True, text=True)
    assert done.returncode != 0 and "blocked" in done.stderr
    assert cli(blocked_env, "train", "--help", check=False).returncode != 0  # the attack's own command needs torch


@pytest.mark.parametrize("command", ["serve", "db", "study", "analyze", "simulate", "bundle", "evaluate", "admin",
                                     "plan", "--help"])
def test_help_of_every_torch_free_command(blocked_env, command):
    done = cli(blocked_env, *([command, "--help"] if command != "--help" else ["--help"]))
    assert "Usage: mi-harness" in done.stdout


def test_every_command_runs_as_python_m():
    from mi_harness.cli import COMMANDS

    for name in COMMANDS:
        done = subprocess.run([sys.executable, "-m", "mi_harness", name, "--help"], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and f"Usage: mi-harness {name}" in done.stdout, (name, done.stderr)


def test_a_whole_study_without_torch(blocked_env, faces, tmp_path):
    bundle = make_bundle(faces, tmp_path / "bundle")
    url = f"sqlite:///{tmp_path / 'survey.db'}"
    assert "valid, 42 items" in cli(blocked_env, "bundle", "check", str(bundle)).stdout
    cli(blocked_env, "db", "upgrade", "--database", url)
    created = cli(blocked_env, "study", "create", "--database", url, "--name", "lab", "--bundle", str(bundle),
                  "--set", "runs=1", "--set", "answers_per_item=1", "--open-run", "1")
    assert json.loads(created.stdout.splitlines()[-1])["items"] == 42
    cli(blocked_env, "simulate", "lab", "--database", url, "--workers", "5", "--hits-per-worker", "1")
    cli(blocked_env, "study", "export", "--database", url, "1", "--out", str(tmp_path / "answers.csv"))
    assert len((tmp_path / "answers.csv").read_text().splitlines()) > 1
    cli(blocked_env, "analyze", "lab", "--database", url, "--out", str(tmp_path / "report"), "--no-deep-judge")
    assert (tmp_path / "report" / "report.html").is_file()


def test_a_non_editable_install_upgrades_a_database(tmp_path):
    """The wheel carries the migrations: install it into a folder of its own and upgrade from there."""
    wheels, source = tmp_path / "wheels", tmp_path / "source"  # a copy: building leaves build/ in the tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "dist",
                                                                 "test-artifacts", "*.egg-info", "__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("mi_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "survey_app/migrations/env.py" in names and "survey_app/migrations/versions/0001_initial.py" in names
    assert "mi_harness/cli.py" in names and "survey_app/templates/worker/task.html" in names
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    work = tmp_path / "elsewhere"  # not the source tree: nothing may be found there
    work.mkdir()
    where = subprocess.run([sys.executable, "-c", "import survey_app, mi_harness; print(survey_app.__file__)"],
                           env=env, cwd=work, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    url = f"sqlite:///{tmp_path / 'survey.db'}"
    done = cli(env, "db", "upgrade", "--database", url, cwd=work)
    assert "database at revision" in done.stdout
