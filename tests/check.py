"""Every check, in one command: `uv run tests/check.py` (the README's test command).

No file installed by two distributions (tests/installed_files.py); ruff (lint and format)
and mypy --strict on the project's own code only; import-linter, buf lint and buf
breaking; generated code compared with a fresh generation; and pytest (which also compares
schema.sql with the migrations applied from scratch) in parallel worker processes
(pytest-xdist, each with its own embedded PostgreSQL).

pytest starts at once and the static checks run one after another beside it (pytest
waits on servers and subprocesses much of the time), each printed when it ends. Every step
runs; the command fails if any step failed, or if pytest ran no test. Extra arguments go to
pytest, e.g. `uv run tests/check.py -m fault`, or `-n 0` to run the tests in one process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST_NO_TESTS = 5
PYTEST_WORKERS = 4
"""pytest-xdist processes. Most tests wait on servers, subprocesses or PostgreSQL (the
serial suite used ~half of one core's time), so more processes than cores: on the shared
2-core machine tests/client + tests/e2e took 103 s with -n 3, 97 s with -n 4, 106 s
with -n 6."""


@dataclass(frozen=True)
class Step:
    name: str
    cmd: list[str]
    cwd: Path = ROOT


@dataclass(frozen=True)
class Result:
    step: Step
    code: int
    seconds: float

    @property
    def outcome(self) -> str:
        return "ok" if self.code == 0 else f"FAILED ({self.code})"


def buf_against() -> list[str]:
    """`buf breaking` compares with main (a checkout without main has nothing to compare)."""
    has_main = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "main"], cwd=ROOT, capture_output=True
    )
    if has_main.returncode != 0:
        return []
    return ["buf", "breaking", "protos", "--against", ".git#branch=main,subdir=protos"]


def static_steps() -> list[Step]:
    py = sys.executable
    out = [
        Step("installed files", [py, "-m", "tests.installed_files"]),
        Step("ruff check", [py, "-m", "ruff", "check", "."]),
        Step("ruff format", [py, "-m", "ruff", "format", "--check", "."]),
        Step("mypy --strict", [py, "-m", "mypy"]),
        Step("import contracts", ["lint-imports"]),
        Step("buf lint", ["buf", "lint"], ROOT / "protos"),
    ]
    against = buf_against()
    if against:
        out.append(Step("buf breaking (against main)", against))
    out.append(Step("generated code is fresh", [py, "protos/tools/generate.py", "--check"]))
    return out


def pytest_step(args: list[str]) -> Step:
    return Step("pytest", [sys.executable, "-m", "pytest", "-n", str(PYTEST_WORKERS), *args])


def child_env() -> dict[str, str]:
    """The steps' environment: this one, but Python writes its bytecode cache. Without it
    (PYTHONDONTWRITEBYTECODE=1, set in some sandboxes) every server, worker and CLI process
    the tests start compiles its imports again: a worker took 3 s to start instead of 1."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_static(steps: list[Step], env: dict[str, str], results: list[Result]) -> None:
    """Each step in turn, its output captured and printed (whole) when it ends."""
    for step in steps:
        started = time.monotonic()
        done = subprocess.run(
            step.cmd, cwd=step.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        result = Result(step, done.returncode, time.monotonic() - started)
        results.append(result)
        shown = done.stdout.decode(errors="replace").rstrip()
        body = f"\n{shown}" if shown and result.code != 0 else ""
        print(f"\n=== {step.name}: {result.outcome} in {result.seconds:.1f}s{body}", flush=True)


def main(argv: list[str]) -> int:
    statics, tests = static_steps(), pytest_step(argv)
    for step in [*statics, tests]:
        if shutil.which(step.cmd[0]) is None and step.cmd[0] != sys.executable:
            print(f"check: {step.cmd[0]} not found; run this through `uv run`", file=sys.stderr)
            return 2
    env = child_env()
    results: list[Result] = []
    beside = threading.Thread(target=run_static, args=(statics, env, results), daemon=True)
    print(f"=== pytest (-n {PYTEST_WORKERS}), and beside it: {', '.join(s.name for s in statics)}")
    started = time.monotonic()
    beside.start()
    code = subprocess.run(tests.cmd, cwd=tests.cwd, env=env).returncode
    pytest_result = Result(tests, code, time.monotonic() - started)
    beside.join()
    results.append(pytest_result)

    print("\n=== summary")
    for result in results:
        print(f"  {result.step.name}: {result.outcome} in {result.seconds:.1f}s")
    print(f"  (all in {time.monotonic() - started:.1f}s)")
    if code == PYTEST_NO_TESTS:
        print("check: pytest ran no test", file=sys.stderr)
        return 1
    failed = [r for r in results if r.code != 0]
    if failed:
        print(f"check: failed: {', '.join(r.step.name for r in failed)}", file=sys.stderr)
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
