"""The reaper sidecar on its own: what it does when the worker's pipe closes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from batchyard.worker.reaper.client import Reaper
from batchyard.worker.reaper.sidecar import Registry
from tests.worker.jobs import alive, kill_leftovers, wait_for_sync


def test_closing_the_pipe_kills_registered_groups_and_removes_dirs(tmp_path: Path) -> None:
    attempt_dir = tmp_path / "attempt"
    (attempt_dir / "output").mkdir(parents=True)
    job = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    reaper = Reaper.start()
    try:
        reaper.track_group(job.pid)
        reaper.track_dir(attempt_dir)
        reaper.close()  # what the kernel does for a worker killed with kill -9
        wait_for_sync(lambda: job.poll() is not None, "the job to be killed")
        assert not attempt_dir.exists()
        assert not alive(reaper.pid)
    finally:
        kill_leftovers([job.pid])
        job.wait()


def test_released_groups_and_dirs_are_left_alone(tmp_path: Path) -> None:
    attempt_dir = tmp_path / "kept"
    attempt_dir.mkdir()
    reaper = Reaper.start()
    reaper.track_dir(attempt_dir)
    reaper.release_dir(attempt_dir)
    reaper.close()
    assert attempt_dir.is_dir()


def test_unknown_commands_are_refused() -> None:
    registry = Registry()
    with pytest.raises(ValueError):
        registry.handle("explode 1")
    registry.handle("group 12")
    registry.handle("ungroup 12")
    assert registry.groups == set()
    assert registry.ended == {12}
