"""End-to-end fixtures: the real server (in process) and real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchyard.server.app import App


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The workers' --workspace-root; tests put their job scripts here."""
    root = tmp_path / "workspace"
    root.mkdir()
    return root


@pytest.fixture
def start_worker(
    server: App, target: str, workspace: Path, tmp_path: Path, sql_target_dsn: str
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `python -m batchyard.worker` processes against the test's server, storing
    results in the server's artifact store, with the SQL target `sandbox` (the session's
    target database, given as a user would: in the environment). ``python``: the worker's
    interpreter (which also runs its SQL jobs)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, name: str = "w", python: str = sys.executable) -> subprocess.Popen[bytes]:
        index = len(started)
        env = {
            **os.environ,
            "BATCHYARD_LOG_FORMAT": "json",
            **server.settings.artifacts.as_env(),
            "BATCHYARD_SQL_TARGET_SANDBOX": sql_target_dsn,
        }
        cmd = [
            python,
            "-m",
            "batchyard.worker",
            "--server",
            target,
            "--workspace-root",
            str(workspace),
            "--state-dir",
            str(tmp_path / f"state-{index}"),
            "--worker-id",
            f"{name}{index}",
            "--kill-grace",
            "1",
            *args,
        ]
        with (tmp_path / f"worker-{index}.log").open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait()
