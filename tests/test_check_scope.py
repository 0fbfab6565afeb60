"""The lint steps of tests/check.py cover the project's own code only: files a user writes
in the checkout while following the README's tour (jobs/*.py) never fail the test command,
while a lint error in the project's code still does."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USER_JOB = "import os, sys, time\nname = sys.argv[1] if len(sys.argv) > 1 else 'world'\n"
"""What the tour's jobs/hello.py starts with: unused imports, one line for three, quotes."""


def ruff(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )


def a_checkout(tmp_path: Path) -> Path:
    """The project's configuration, one clean module of ours, and the tour's user files."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    ours = tmp_path / "server" / "src" / "batchyard" / "server" / "ok.py"
    ours.parent.mkdir(parents=True)
    ours.write_text('"""A module."""\n\nVALUE = 1\n')
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "hello.py").write_text(USER_JOB)
    (tmp_path / "scratch.py").write_text(USER_JOB)
    return tmp_path


def test_the_tours_jobs_do_not_fail_ruff(tmp_path: Path) -> None:
    project = a_checkout(tmp_path)
    for args in (["check"], ["format", "--check"]):
        done = ruff(project, *args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_lint_error_in_the_projects_code_still_fails_ruff(tmp_path: Path) -> None:
    project = a_checkout(tmp_path)
    (project / "server" / "src" / "batchyard" / "server" / "bad.py").write_text(USER_JOB)
    for args in (["check"], ["format", "--check"]):
        done = ruff(project, *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "bad.py" in done.stdout + done.stderr
        assert "hello.py" not in done.stdout + done.stderr


def test_every_python_file_of_the_project_is_linted() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:  # not a git checkout (an unpacked archive): nothing to compare
        return
    shown = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--show-files", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    linted = {str(Path(p).resolve().relative_to(ROOT)) for p in shown}
    generated = {p for p in tracked if "_pb2" in p}
    assert set(tracked) - generated - linted == set()


def test_mypy_checks_the_projects_folders_only() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    for entry in config["files"]:
        assert entry.split("/")[0] in {"protos", "client", "server", "worker", "tests"}, entry
