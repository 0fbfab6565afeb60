"""`@pytest.mark.serial`: a test that must not run while any other test of the run does
(fixed ports, machine-wide state such as `ip netns`, timings), even under pytest-xdist.

A pytest plugin (tests/conftest.py loads it). Under xdist every test holds a lock file of
the run shared, a serial test holds it exclusively; a gate lock in front of it makes the
other workers wait for a serial test instead of starving it. Without xdist (one process)
tests run one at a time anyway, and nothing is locked.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

RUN_ID = "PYTEST_XDIST_TESTRUNUID"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "serial: runs while no other test of the run does (even under xdist)"
    )


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    with path.open("a") as file:
        fcntl.flock(file, mode)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@contextmanager
def held(directory: Path, serial: bool) -> Iterator[None]:
    """The run's lock (in a directory all its workers share), exclusively for a serial
    test, shared otherwise."""
    gate, tests = directory / "serial.gate", directory / "serial.lock"
    if serial:
        with _flock(gate, fcntl.LOCK_EX), _flock(tests, fcntl.LOCK_EX):
            yield
        return
    with _flock(gate, fcntl.LOCK_EX):
        shared = tests.open("a")
        fcntl.flock(shared, fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(shared, fcntl.LOCK_UN)
        shared.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Around the whole test (set-up, call, tear-down)."""
    run_id = os.environ.get(RUN_ID)
    if not run_id:
        return (yield)
    basetemp = item.config.option.basetemp  # a worker's: the run's basetemp / gwN
    shared = Path(basetemp).parent if basetemp else Path(tempfile.gettempdir()) / run_id
    shared.mkdir(parents=True, exist_ok=True)
    with held(shared, item.get_closest_marker("serial") is not None):
        return (yield)
