"""Every descendant dies with its job: a cgroup v2 per attempt, ended with cgroup.kill.

The jobs here start what a process group cannot hold: a ``setsid`` grandchild and a
double-forked daemon (its own session, its parent gone, its output detached). Checked in
/proc: after an exit, a cancel, a timeout, a kill -9 of the worker — and after a worker
whose reaper died too, at the next start — nothing of the job is left, and neither is its
cgroup directory. The control test shows the same job does leave the escapees behind when
only its process group holds it (which is why the cgroup is worth having).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution import cgroups
from batchyard.worker.execution.attempt import Execution, ExecutionOptions
from batchyard.worker.execution.cgroups import CgroupError, CgroupTree
from batchyard.worker.outcome import StopReason
from batchyard.worker.reaper.client import Reaper
from tests.worker.jobs import (
    MemorySink,
    kill_leftovers,
    living,
    pids_in,
    python_job,
    run_job,
    shell_job,
    wait_for,
    wait_for_sync,
    workspace_job,
)
from tests.worker.test_process_tree import read_pids, start_parent

# A setsid grandchild and a double-forked daemon, their pids printed as "pid N"; then {end}.
ESCAPING_JOB = """
setsid sleep 1000 &
echo "pid $!"
"$PYTHON" -c 'import os, sys, time
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    sys.exit(0)
with open("daemon.tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename("daemon.tmp", "daemon.pid")
os.close(1)
os.close(2)
time.sleep(1000)'
until [ -e daemon.pid ]; do sleep 0.01; done
echo "pid $(cat daemon.pid)"
echo started
{end}
"""


def escaping(end: str, *, timeout: float | None = None) -> job_pb2.JobConfig:
    return shell_job(
        "sh", "-c", ESCAPING_JOB.format(end=end), env={"PYTHON": sys.executable}, timeout=timeout
    )


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[CgroupTree]:
    try:
        made = cgroups.detect(tmp_path / "state")
    except CgroupError as exc:
        pytest.skip(f"this host gives the worker no cgroup v2: {exc}")
    yield made
    made.close()
    assert not made.root.exists()


def attempt_cgroups(tree: CgroupTree) -> list[Path]:
    if not tree.root.exists():
        return []
    return [child for child in tree.root.iterdir() if child.is_dir()]


@pytest.fixture
def in_cgroups(options: ExecutionOptions, tree: CgroupTree) -> ExecutionOptions:
    return replace(options, cgroups=tree)


@pytest.fixture
def spawned() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    kill_leftovers(pids)


async def test_setsid_and_daemon_die_when_the_job_exits(
    in_cgroups: ExecutionOptions, tree: CgroupTree, spawned: list[int]
) -> None:
    result = await run_job(escaping("exit 0"), in_cgroups)
    spawned += pids_in(result.sink.lines_of("stdout"))
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert len(spawned) == 2
    await wait_for(lambda: not living(spawned), "the setsid grandchild and the daemon to die")
    assert attempt_cgroups(tree) == []


async def test_setsid_and_daemon_die_on_cancel(
    in_cgroups: ExecutionOptions, tree: CgroupTree, spawned: list[int]
) -> None:
    async def during(execution: Execution, sink: MemorySink) -> None:
        await wait_for(lambda: len(pids_in(sink.lines_of("stdout"))) == 2, "the escapees")
        spawned.extend(pids_in(sink.lines_of("stdout")))
        assert len(living(spawned)) == 2
        assert len(attempt_cgroups(tree)) == 1
        execution.stop(StopReason.CANCEL)

    result = await run_job(escaping("sleep 1000"), in_cgroups, during=during)
    assert result.outcome.status == run_pb2.RUN_STATUS_CANCELLED
    await wait_for(lambda: not living(spawned), "the setsid grandchild and the daemon to die")
    assert attempt_cgroups(tree) == []


async def test_setsid_and_daemon_die_on_timeout(
    in_cgroups: ExecutionOptions, tree: CgroupTree, spawned: list[int]
) -> None:
    result = await run_job(escaping("sleep 1000", timeout=1.0), in_cgroups)
    spawned += pids_in(result.sink.lines_of("stdout"))
    assert result.outcome.reason == run_pb2.RUN_REASON_TIMEOUT
    assert len(spawned) == 2
    await wait_for(lambda: not living(spawned), "the setsid grandchild and the daemon to die")
    assert attempt_cgroups(tree) == []


async def test_control_a_process_group_alone_lets_them_escape(
    options: ExecutionOptions, reaper: Reaper, spawned: list[int]
) -> None:
    """The fallback (process groups and the reaper's session sweep) cannot hold them."""
    result = await run_job(escaping("exit 0"), options, reaper=reaper)
    spawned += pids_in(result.sink.lines_of("stdout"))
    assert len(spawned) == 2
    assert sorted(living(spawned)) == sorted(spawned)


async def test_a_program_that_cannot_execute_still_says_why(
    in_cgroups: ExecutionOptions, tree: CgroupTree, workspace: Path
) -> None:
    (workspace / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (workspace / "run.sh").chmod(0o644)
    config = workspace_job("", "run.sh", job_type=job_pb2.JOB_TYPE_SHELL)
    result = await run_job(config, in_cgroups)
    assert result.outcome.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE
    assert "cannot start 'run.sh': Permission denied" in result.outcome.message
    assert attempt_cgroups(tree) == []


USES = """
import time
block = bytearray(64 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
"""


@pytest.mark.parametrize("mode", ["cgroup", "process-group"])
async def test_the_attempt_reports_its_peak_memory_and_cpu_time(
    options: ExecutionOptions, tree: CgroupTree, mode: str
) -> None:
    chosen = replace(options, cgroups=tree if mode == "cgroup" else None)
    result = await run_job(python_job(USES), chosen)
    usage = result.outcome.usage
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert usage.cpu_seconds is not None and 0.3 <= usage.cpu_seconds < 30
    assert usage.peak_memory_bytes is not None
    assert 64 * 1024 * 1024 <= usage.peak_memory_bytes < 4 * 1024**3


def test_kill_9_of_the_worker_leaves_no_escapee_and_no_cgroup(
    tmp_path: Path, tree: CgroupTree, spawned: list[int]
) -> None:
    parent, state, pid_file = start_parent(tmp_path, "--cgroups", "--escapees")
    roles = {"leader", "sleeper", "own-group", "setsid", "daemon", "reaper"}
    try:
        wait_for_sync(lambda: set(read_pids(pid_file)) >= roles, "the job", within=10)
        spawned += read_pids(pid_file).values()
        assert sorted(living(spawned)) == sorted(spawned)
        assert len(attempt_cgroups(tree)) == 1
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    wait_for_sync(lambda: not living(spawned), "the job's processes and the reaper to end")
    wait_for_sync(lambda: not tree.root.exists(), "the reaper to remove the cgroups")
    assert not (state / "slots" / "1").exists()


def test_the_next_start_sweeps_what_a_worker_and_its_reaper_left(
    tmp_path: Path, tree: CgroupTree, spawned: list[int]
) -> None:
    parent, state, pid_file = start_parent(tmp_path, "--cgroups", "--escapees", "--no-reaper")
    roles = {"leader", "sleeper", "own-group", "setsid", "daemon"}
    try:
        wait_for_sync(lambda: set(read_pids(pid_file)) >= roles, "the job", within=10)
        spawned += read_pids(pid_file).values()
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    assert sorted(living(spawned)) == sorted(spawned), "nobody killed them yet"
    again, described = cgroups.choose(cgroups.AUTO, state)
    assert again is not None and again.root == tree.root
    assert "removed 1 left by a previous worker" in described
    wait_for_sync(lambda: not living(spawned), "the swept job's processes to end")
    assert attempt_cgroups(tree) == []


def test_the_fallback_can_be_forced(tmp_path: Path) -> None:
    chosen, described = cgroups.choose(cgroups.PROCESS_GROUP, tmp_path / "state")
    assert chosen is None
    assert described == "process groups (--process-tree=process-group)"


def test_the_worker_says_which_one_is_in_use(tmp_path: Path, tree: CgroupTree) -> None:
    """At start, before it even reaches a server (none listens here)."""
    for mode, expected in (("auto", "cgroup"), ("process-group", "process-group")):
        worker = subprocess.Popen(
            [sys.executable, "-m", "batchyard.worker", "--server", "127.0.0.1:9",
             "--state-dir", str(tmp_path / "state"), "--process-tree", mode,
             "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert worker.stdout is not None
            line = next(line for line in worker.stdout if '"process_tree"' in line)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        assert f'"mode": "{expected}"' in line


def without_cgroups(*argv: str) -> list[str]:
    """``argv`` on a host without cgroups: a mount namespace whose /sys/fs/cgroup is empty."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("hiding the cgroup hierarchies needs root and unshare")
    hide = 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh", *argv]


def test_without_cgroups_auto_falls_back_and_cgroup_refuses_to_start(tmp_path: Path) -> None:
    worker = [sys.executable, "-m", "batchyard.worker", "--server", "127.0.0.1:9",
              "--state-dir", str(tmp_path / "state"), "--log-format", "json"]  # fmt: skip
    refused = subprocess.run(
        without_cgroups(*worker, "--process-tree", "cgroup"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "batchyard worker: --process-tree=cgroup: cannot make /sys/fs/cgroup" in refused.stderr
    fallback = subprocess.Popen(
        without_cgroups(*worker, "--process-tree", "auto"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert fallback.stdout is not None
        line = next(line for line in fallback.stdout if '"process_tree"' in line)
    finally:
        fallback.send_signal(signal.SIGTERM)
        fallback.wait(30)
    assert '"mode": "process-group"' in line
    assert "process groups (no cgroup: cannot make /sys/fs/cgroup" in line
