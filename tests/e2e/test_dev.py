"""`batchyard dev --demo`, the README's first command, as a new user runs it: no token, no
configuration, then the CLI finds the server and the dev token by itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port

BATCHYARD = str(Path(sys.executable).parent / "batchyard")


@pytest.fixture
def home() -> Iterator[Path]:
    """A fresh user: its own config, data and state directories (outside pytest's basetemp,
    which a concurrent run may prune under the embedded PostgreSQL)."""
    path = Path(tempfile.mkdtemp(prefix="batchyard-dev-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def user_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BATCHYARD_", "DATABASE_URL"))  # nothing configured
    }
    env.update(
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        BATCHYARD_LOG_FORMAT="json",
    )
    return env


def wait_for_event(log: Path, event: str, proc: subprocess.Popen[bytes], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                found: dict = json.loads(line)
                return found
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"no {event} in {log.read_text()}")


def test_dev_demo_then_the_cli_with_no_configuration(home: Path) -> None:
    env = user_env(home)
    port = free_port()
    log = home / "dev.log"
    with log.open("ab") as out:
        dev = subprocess.Popen(
            [BATCHYARD, "dev", "--demo", "--listen", f"127.0.0.1:{port}", "--slots", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
    try:
        finished = wait_for_event(log, "demo_run_finished", dev, timeout=120)
        assert finished["status"] == "SUCCEEDED", finished
        token_file = home / "config" / "batchyard" / "dev-token"
        assert token_file.stat().st_mode & 0o077 == 0, "the dev token is user-only"
        assert token_file.read_text().startswith("byt_")

        runs = subprocess.run(
            [BATCHYARD, "runs", "list", "--server", f"127.0.0.1:{port}", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert runs.returncode == 0, runs.stderr
        assert finished["run"] in runs.stdout
        logs = subprocess.run(
            [BATCHYARD, "logs", finished["run"], "--server", f"127.0.0.1:{port}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "hello from batchyard" in logs.stdout, logs.stderr
        query = subprocess.run(
            [
                BATCHYARD,
                "sql",
                "SELECT 6 * 7 AS answer",
                "--target",
                "sandbox",
                "--wait",
                "--server",
                f"127.0.0.1:{port}",
                "-o",
                "csv",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert query.returncode == 0, query.stderr
        assert query.stdout.split() == ["answer", "42"]  # the dev worker's own sandbox
        service = subprocess.run(
            [
                BATCHYARD,
                "sql",
                "SELECT count(*) FROM runs",
                "--target",
                "sandbox",
                "--wait",
                "--server",
                f"127.0.0.1:{port}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert service.returncode == 1 and "runs" in service.stdout + service.stderr
        assert token_file.read_text().strip() not in log.read_text(), "no token in the logs"
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            code = dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
            raise
    assert code == 0, log.read_text()[-3000:]
    # A quiet terminal: the ready banner, no line per RPC, no warning that does not apply.
    text = log.read_text()
    assert "batchyard dev is ready" in text
    assert f"  gRPC:   127.0.0.1:{port}" in text
    assert "batchyard runs submit hello --wait --follow" in text
    assert '"rpc_finished"' not in text, "RPC lines are at debug in dev"
    assert "no_api_tokens" not in text and "server bootstrap" not in text
    assert "fork_posix" not in text
