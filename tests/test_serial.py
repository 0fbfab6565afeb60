"""`@pytest.mark.serial` (tests/serial.py): under pytest-xdist a serial test runs while no
other test does, and the other tests still run side by side."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = """
import os, time
from pathlib import Path

import pytest

LOG = Path(os.environ["SERIAL_TEST_LOG"])


def spend(name):
    start = time.monotonic()
    time.sleep(0.3)
    with LOG.open("a") as log:
        log.write(f"{name} {start} {time.monotonic()}\\n")


@pytest.mark.parametrize("n", range(8))
def test_shared(n):
    spend(f"shared{n}")


@pytest.mark.serial
@pytest.mark.parametrize("n", range(2))
def test_alone(n):
    spend(f"serial{n}")
"""


def test_a_serial_test_runs_alone_and_the_others_together(tmp_path: Path) -> None:
    (tmp_path / "test_some.py").write_text(TESTS)
    log = tmp_path / "log"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "3",
            "-p",
            "tests.serial",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path / "test_some.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "SERIAL_TEST_LOG": str(log), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    spans = {}
    for line in log.read_text().splitlines():
        name, start, end = line.split()
        spans[name] = (float(start), float(end))
    assert len(spans) == 10

    def overlap(a: str, b: str) -> bool:
        return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]

    for alone in ("serial0", "serial1"):
        assert not [other for other in spans if other != alone and overlap(alone, other)]
    shared = [name for name in spans if name.startswith("shared")]
    assert any(overlap(a, b) for a in shared for b in shared if a < b)
