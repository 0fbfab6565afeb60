"""Ctrl-C on `batchyard dev` with a job running and a log follower attached stops at once
and loses nothing: the job is handed back (it runs again at the next start) and the
follower, told the server went away, keeps retrying instead of failing. (Timings:
`python -m tests.bench.dev_stop`.)"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.bench.dev_stop import dev_env, start_dev, until, write_job


@pytest.mark.fault  # two dev starts: ~1 min
def test_ctrl_c_hands_the_job_back_and_the_follower_waits(tmp_path) -> None:
    home = tmp_path
    env, client_env, target = dev_env(home)
    dev = start_dev(home, env, target)
    follower = None
    try:
        run = write_job(home, client_env)
        out = (home / "follow.out").open("ab")
        follower = subprocess.Popen(
            [*client_cmd(), "logs", run, "--follow"], stdout=out, stderr=out, env=client_env
        )
        until(lambda: b"tick 3" in (home / "follow.out").read_bytes(), 60, "follower output")
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=15) == 0  # the worker's 10 s grace and the stream's are gone
        time.sleep(1)
        assert follower.poll() is None, (home / "follow.out").read_text()  # still retrying

        dev = start_dev(home, env, target)  # the run comes back and runs again
        got = lambda: json.loads(cli(client_env, "runs", "get", run, "-o", "json"))  # noqa: E731
        until(lambda: len(got()["attempts"]) >= 2, 60, "a second attempt")
        first = got()["attempts"][0]
        assert first["status"] == "RUN_STATUS_PENDING"  # handed back, not failed or lost
        assert first["message"] == "the worker is shutting down"
        until(lambda: (home / "follow.out").read_text().count("tick 3") >= 2, 60, "resumed")
        assert "Traceback" not in (home / "follow.out").read_text()
    finally:
        for proc in (follower, dev):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def client_cmd() -> list[str]:
    import sys
    from pathlib import Path

    return [str(Path(sys.executable).parent / "batchyard")]


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*client_cmd(), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
