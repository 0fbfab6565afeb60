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

BATCHYARD = str(Path(sys.executable).parent / "batchyard")

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


def dev_env(home: Path) -> tuple[dict[str, str], dict[str, str], str]:
    """A fresh user's environment in `home`, the CLI's (with the server), the address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHYARD_", "DATABASE"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "c"), XDG_DATA_HOME=str(home / "d"))
    env.update(XDG_STATE_HOME=str(home / "s"), BATCHYARD_LOG_FORMAT="json")
    target = f"127.0.0.1:{free_port()}"
    return env, {**env, "BATCHYARD_SERVER": target}, target


def start_dev(
    home: Path, env: dict[str, str], target: str, batchyard: str = BATCHYARD
) -> subprocess.Popen[bytes]:
    """`batchyard dev` in `home`, once its worker is leasing."""
    log = home / "dev.log"
    before = log.read_bytes().count(b'"worker_started"') if log.exists() else 0
    with log.open("ab") as out:
        dev = subprocess.Popen(
            [batchyard, "dev", "--listen", target], stdout=out, stderr=out, env=env, cwd=home
        )
    # Two worker_started lines per start: dev's (the process) and the runner's (leasing).
    until(lambda: log.read_bytes().count(b'"worker_started"') >= before + 2, 120, "dev start")
    return dev


def write_job(home: Path, client_env: dict[str, str], batchyard: str = BATCHYARD) -> str:
    """Define the ticking job and submit a run of it: its uuid."""
    (home / "job.yaml").write_text(JOB)

    def cli(*args: str) -> str:
        done = subprocess.run(
            [batchyard, *args], env=client_env, capture_output=True, text=True, timeout=60
        )
        if done.returncode:
            raise RuntimeError(f"{args}: {done.stderr}")
        return done.stdout

    cli("definitions", "create", "-f", str(home / "job.yaml"))
    run: str = json.loads(cli("runs", "submit", "ticker", "-o", "json"))["uuid"]
    return run


def trial(batchyard: str) -> tuple[float, str]:
    home = Path(tempfile.mkdtemp(prefix="bench-devstop-"))
    env, client_env, target = dev_env(home)
    dev = start_dev(home, env, target, batchyard)
    follower = None
    try:
        run = write_job(home, client_env, batchyard)
        out = (home / "follow.out").open("ab")
        follower = subprocess.Popen(
            [batchyard, "logs", run, "--follow"], stdout=out, stderr=out, env=client_env
        )
        until(lambda: b"tick 3" in (home / "follow.out").read_bytes(), 60, "follower output")
        started = time.monotonic()
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=120)
        took = time.monotonic() - started
        state = "still retrying" if follower.poll() is None else f"exited {follower.returncode}"
        return took, state
    finally:
        for proc in (follower, dev):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--batchyard", default=BATCHYARD)
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
