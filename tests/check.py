"""Every check, in one command: `uv run tests/check.py` (the README's test command).

No file installed by two distributions (tests/installed_files.py); ruff (lint and format)
and mypy --strict on the project's own code only; import-linter, buf lint and buf
breaking; generated code compared with a fresh generation; then pytest (which also
compares schema.sql with the migrations applied from scratch). Stops at the first failure.
Extra arguments go to pytest, e.g. `uv run tests/check.py -m fault`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST_NO_TESTS = 5


def buf_against() -> list[str]:
    """`buf breaking` compares with main (a checkout without main has nothing to compare)."""
    has_main = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "main"], cwd=ROOT, capture_output=True
    )
    if has_main.returncode != 0:
        return []
    return ["buf", "breaking", "protos", "--against", ".git#branch=main,subdir=protos"]


def steps(pytest_args: list[str]) -> list[tuple[str, list[str], Path]]:
    py = sys.executable
    out = [
        ("installed files", [py, "-m", "tests.installed_files"], ROOT),
        ("ruff check", [py, "-m", "ruff", "check", "."], ROOT),
        ("ruff format", [py, "-m", "ruff", "format", "--check", "."], ROOT),
        ("mypy --strict", [py, "-m", "mypy"], ROOT),
        ("import contracts", ["lint-imports"], ROOT),
        ("buf lint", ["buf", "lint"], ROOT / "protos"),
    ]
    against = buf_against()
    if against:
        out.append(("buf breaking (against main)", against, ROOT))
    out += [
        ("generated code is fresh", [py, "protos/tools/generate.py", "--check"], ROOT),
        ("pytest", [py, "-m", "pytest", *pytest_args], ROOT),
    ]
    return out


def main() -> int:
    for name, cmd, cwd in steps(sys.argv[1:]):
        if shutil.which(cmd[0]) is None and cmd[0] != sys.executable:
            print(f"check: {cmd[0]} not found; run this through `uv run`", file=sys.stderr)
            return 2
        print(f"\n=== {name}", flush=True)
        started = time.monotonic()
        code = subprocess.run(cmd, cwd=cwd).returncode
        outcome = "ok" if code == 0 else f"FAILED ({code})"
        print(f"=== {name}: {outcome} in {time.monotonic() - started:.1f}s")
        if name == "pytest" and code == PYTEST_NO_TESTS:
            print("check: pytest ran no test", file=sys.stderr)
            return 1
        if code != 0:
            return code
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
