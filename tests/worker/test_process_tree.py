"""Nothing a job starts outlives its attempt — nor a worker killed with kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchyard.worker.execution.attempt import Execution, ExecutionOptions
from batchyard.worker.outcome import StopReason
from batchyard.worker.reaper.client import Reaper
from tests.worker.jobs import (
    MemorySink,
    kill_leftovers,
    living,
    pids_in,
    python_job,
    run_job,
    sh,
    wait_for,
    wait_for_sync,
)

# Two grandchildren in the job's process group, printed as "pid N".
FORKING_JOB = "sleep 1000 & echo pid $!; sleep 1000 & echo pid $!; echo started; {end}"


@pytest.fixture
def spawned() -> Iterator[list[int]]:
    """Pids a test saw; whatever is still alive at the end is killed."""
    pids: list[int] = []
    yield pids
    kill_leftovers(pids)


async def test_grandchildren_die_when_the_job_exits_normally(
    options: ExecutionOptions, spawned: list[int]
) -> None:
    result = await run_job(sh(FORKING_JOB.format(end="exit 0")), options)
    spawned += pids_in(result.sink.lines_of("stdout"))
    assert len(spawned) == 2
    await wait_for(lambda: not living(spawned), "the grandchildren to die")


async def test_grandchildren_die_on_timeout(options: ExecutionOptions, spawned: list[int]) -> None:
    result = await run_job(sh(FORKING_JOB.format(end="wait"), timeout=0.5), options)
    spawned += pids_in(result.sink.lines_of("stdout"))
    assert len(spawned) == 2
    await wait_for(lambda: not living(spawned), "the grandchildren to die")


async def test_grandchildren_die_on_cancel(options: ExecutionOptions, spawned: list[int]) -> None:
    async def during(execution: Execution, sink: MemorySink) -> None:
        await wait_for(lambda: "started" in sink.lines_of("stdout"), "the job to start")
        spawned.extend(pids_in(sink.lines_of("stdout")))
        assert len(living(spawned)) == 2
        execution.stop(StopReason.CANCEL)

    await run_job(sh(FORKING_JOB.format(end="wait")), options, during=during)
    await wait_for(lambda: not living(spawned), "the grandchildren to die")


LEAVES_ITS_GROUP = """
import subprocess
child = subprocess.Popen(["sleep", "1000"], process_group=0)  # same session, own group
print("pid", child.pid, flush=True)
"""


async def test_a_grandchild_in_its_own_process_group_is_swept_by_the_reaper(
    options: ExecutionOptions, reaper: Reaper, spawned: list[int]
) -> None:
    result = await run_job(python_job(LEAVES_ITS_GROUP), options, reaper=reaper)
    spawned += pids_in(result.sink.lines_of("stdout"))
    assert len(spawned) == 1
    # It left the job's process group, so killpg missed it; the reaper's session sweep must not.
    await wait_for(lambda: not living(spawned), "the reaper to sweep the session")


def read_pids(pid_file: Path) -> dict[str, int]:
    """ "pid N role" lines and the "reaper N" line of the worker-like parent."""
    found: dict[str, int] = {}
    if pid_file.exists():
        for line in pid_file.read_text().splitlines():
            parts = line.split()
            if parts[0] == "pid" and len(parts) == 3:
                found[parts[2]] = int(parts[1])
            elif parts[0] == "reaper":
                found["reaper"] = int(parts[1])
    return found


def start_parent(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    state, pid_file = tmp_path / "state", tmp_path / "pids"
    script = Path(__file__).with_name("worker_like_parent.py")
    parent = subprocess.Popen([sys.executable, str(script), str(state), str(pid_file), *extra])
    return parent, state, pid_file


JOB_ROLES = {"leader", "sleeper", "own-group"}


def test_kill_9_of_the_worker_leaves_no_process_and_no_attempt_dir(
    tmp_path: Path, spawned: list[int]
) -> None:
    parent, state, pid_file = start_parent(tmp_path)
    try:
        wait_for_sync(lambda: set(read_pids(pid_file)) >= JOB_ROLES | {"reaper"}, "the job")
        pids = read_pids(pid_file)
        spawned += pids.values()
        assert (state / "slots" / "1").is_dir()
        assert not set(living(spawned)) ^ set(spawned), "all started and alive"
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    wait_for_sync(lambda: not living(spawned), "the job's processes and the reaper to end")
    assert not (state / "slots" / "1").exists()


def test_without_the_reaper_the_job_would_outlive_the_worker(
    tmp_path: Path, spawned: list[int]
) -> None:
    """The control: proves the test above exercises something that needs the reaper."""
    parent, _, pid_file = start_parent(tmp_path, "--no-reaper")
    try:
        wait_for_sync(lambda: set(read_pids(pid_file)) >= JOB_ROLES, "the job")
        spawned += read_pids(pid_file).values()
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    assert sorted(living(spawned)) == sorted(spawned)
