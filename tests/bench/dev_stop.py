"""How long Ctrl-C takes to stop `batchyard dev` with a job running and a log follower
attached (`batchyard logs RUN --follow` in another process), as a user sees it: from
SIGINT to the dev process gone. Then what became of the run (handed back: pending).

    uv run python -m tests.bench.dev_stop [--trials 3] [--batchyard PATH]

`--batchyard` runs another installation's command (e.g. a checkout of main) for a
before/after comparison. A fresh HOME (XDG directories) per trial.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.processes import free_port

JOB = """\
name: ticker
config:
  type: JOB_TYPE_SHELL
  sourceLocation: /bin/sh
  args: ["-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
"""


def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def trial(batchyard: str) -> tuple[float, str]:
    home = Path(tempfile.mkdtemp(prefix="bench-devstop-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHYARD_", "DATABASE"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "c"), XDG_DATA_HOME=str(home / "d"))
    env.update(XDG_STATE_HOME=str(home / "s"), BATCHYARD_LOG_FORMAT="json")
    target = f"127.0.0.1:{free_port()}"
    client_env = {**env, "BATCHYARD_SERVER": target}
    log = (home / "dev.log").open("ab")
    dev = subprocess.Popen(
        [batchyard, "dev", "--listen", target], stdout=log, stderr=log, env=env, cwd=home
    )
    follower = None
    try:
        until(
            lambda: (
                b'"worker_started"' in (home / "dev.log").read_bytes()
                and b"slots" in (home / "dev.log").read_bytes()
            ),
            120,
            "dev start",
        )
        (home / "job.yaml").write_text(JOB)

        def cli(*args: str) -> str:
            done = subprocess.run(
                [batchyard, *args], env=client_env, capture_output=True, text=True, timeout=60
            )
            if done.returncode:
                raise RuntimeError(f"{args}: {done.stderr}")
            return done.stdout

        until(
            lambda: (
                subprocess.run(
                    [batchyard, "runs", "list"], env=client_env, capture_output=True
                ).returncode
                == 0
            ),
            60,
            "server",
        )
        cli("definitions", "create", "-f", str(home / "job.yaml"))
        run = json.loads(cli("runs", "submit", "ticker", "-o", "json"))["uuid"]
        out = (home / "follow.out").open("ab")
        follower = subprocess.Popen(
            [batchyard, "logs", run, "--follow"], stdout=out, stderr=out, env=client_env
        )
        until(lambda: b"tick 3" in (home / "follow.out").read_bytes(), 60, "follower output")
        started = time.monotonic()
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=120)
        took = time.monotonic() - started
        follower_state = (
            "still retrying" if follower.poll() is None else f"exited {follower.returncode}"
        )
        return took, follower_state
    finally:
        for proc in (follower, dev):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--batchyard", default=str(Path(sys.executable).parent / "batchyard"))
    args = parser.parse_args()
    times = []
    for _ in range(args.trials):
        took, follower = trial(args.batchyard)
        times.append(took)
        print(f"Ctrl-C -> dev gone: {took:.2f} s (follower: {follower})", flush=True)
    print(
        f"median {statistics.median(times):.2f} s over {len(times)}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
