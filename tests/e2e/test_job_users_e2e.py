"""A real worker process started with ``--job-users``: concurrent jobs run as distinct uids
and cannot read each other's secrets or files; SQL and PYTHON jobs, results, and cancel still
work. Needs root (the worker switches each job to another uid)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from batchyard.v1 import log_pb2, log_service_pb2, log_service_pb2_grpc, run_pb2
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e.jobs import define, submit, wait_for
from tests.job_users import (
    FIRST_UID,
    free_range,
    job_python,
    reachable_dir,
    reachable_postgres,
    requires_root,
)

pytestmark = requires_root

FIRST = FIRST_UID + 8
"""The e2e workers' uids: apart from those of the worker tests in the same process."""
CANARY = "canary-e2e-5d0c17"
CANARY_FILE = "canary-e2e-file-93ab"
VICTIM = (
    f'echo {CANARY_FILE} > "$HOME/canary.txt"; '
    "own=$(tr '\\0' '\\n' < /proc/$$/environ | grep -c '^CANARY='); "
    'echo "ready $$ $(id -u) $own"; exec sleep 1000'
)
# Every process's environment it can read, and both slots' canary files (slots/ cannot be
# listed, but its directories' names are no secret).
SNOOP = """
id -u
found=0
for p in /proc/[0-9]*; do
    if tr '\\0' '\\n' < "$p/environ" 2>/dev/null | grep -q '^CANARY='; then found=$((found+1)); fi
done
echo "environments with the canary: $found"
slots=$(dirname "$HOME")
for n in 1 2; do cat "$slots/$n/canary.txt" 2>/dev/null || echo "slot $n: cannot read"; done
"""
SQL = "SELECT 6 * 7 AS answer"
PYTHON = "import os; print('python as', os.getuid(), os.getgid(), os.getgroups())"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = reachable_dir("by-job-users-e2e-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def interpreter(scratch: Path) -> str:
    python = job_python(scratch, FIRST)
    if python is None:
        pytest.skip("no Python interpreter the job uids can run (and that imports the worker)")
    return python


@pytest.fixture
def job_worker(
    start_worker: Callable[..., subprocess.Popen[bytes]],
    interpreter: str,
    scratch: Path,
    request: pytest.FixtureRequest,
) -> Callable[[], subprocess.Popen[bytes]]:
    """Starts a worker with two slots whose jobs run as uids FIRST and FIRST + 1."""
    free_range(FIRST, 2)
    state = scratch / f"state-{request.node.name[:40]}"

    def start(*extra: str) -> subprocess.Popen[bytes]:
        return start_worker(
            *("--slots", "2", "--job-users", str(FIRST), "--state-dir", str(state)),
            *("--python", interpreter, *extra),
            python=interpreter,
        )

    return start


async def stdout_of(channel: grpc.aio.Channel, run: str) -> list[str]:
    logs = log_service_pb2_grpc.LogServiceStub(channel)
    entries = (await logs.GetLogs(log_service_pb2.GetLogsRequest(run=run))).entries
    return [e.message for e in entries if e.stream == log_pb2.LOG_STREAM_STDOUT]


async def first_line(channel: grpc.aio.Channel, run: str, within: float = 30.0) -> str:
    """The run's first stdout line, once the worker shipped it."""
    deadline = asyncio.get_running_loop().time() + within
    while not (lines := await stdout_of(channel, run)):
        assert asyncio.get_running_loop().time() < deadline, f"no output from {run}"
        await asyncio.sleep(0.05)
    return lines[0]


async def test_concurrent_jobs_run_as_distinct_uids_and_cannot_read_each_other(
    channel: grpc.aio.Channel, definitions: Any, runs: Any, job_worker: Any
) -> None:
    shell = {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh"}
    await define(
        definitions, "victim", {**shell, "args": ["-c", VICTIM], "secretEnv": {"CANARY": CANARY}}
    )
    await define(definitions, "snoop", {**shell, "args": ["-c", SNOOP]})
    job_worker()
    victim = await submit(runs, "victim")
    _, pid, victim_uid, sees_own = (await first_line(channel, victim.uuid)).split()
    assert sees_own == "1", "the victim reads its own environment"
    assert f"CANARY={CANARY}".encode() in Path(f"/proc/{pid}/environ").read_bytes()  # root

    snoop = await submit(runs, "snoop")
    done = await wait_for(runs, snoop.uuid)
    assert done.status == run_pb2.RUN_STATUS_SUCCEEDED, done
    seen = await stdout_of(channel, snoop.uuid)
    assert {int(victim_uid), int(seen[0])} == {FIRST, FIRST + 1}
    assert seen[1] == "environments with the canary: 0"
    assert sorted(seen[2:]) == ["slot 1: cannot read", "slot 2: cannot read"]
    assert CANARY not in "\n".join(seen)

    await runs.CancelRun(rpb.CancelRunRequest(run=victim.uuid))
    final = await wait_for(runs, victim.uuid)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED


async def test_sql_and_python_jobs_run_as_the_slot_uid_and_store_results(
    channel: grpc.aio.Channel,
    definitions: Any,
    runs: Any,
    job_worker: Any,
    sql_target_dsn: str,
    scratch: Path,
) -> None:
    await define(
        definitions,
        "answer",
        {
            "type": "JOB_TYPE_SQL",
            "source": {"inline": {"text": SQL}},
            "sqlTarget": {"connection": "sandbox"},
        },
    )
    await define(
        definitions, "whoami", {"type": "JOB_TYPE_PYTHON", "source": {"inline": {"text": PYTHON}}}
    )
    async with reachable_postgres(sql_target_dsn, scratch / "pg") as dsn:
        job_worker("--sql-target", f"sandbox={dsn}")
        sql = await submit(runs, "answer")
        python = await submit(runs, "whoami")
        for run in (sql, python):
            final = await wait_for(runs, run.uuid)
            assert final.status == run_pb2.RUN_STATUS_SUCCEEDED, final

    listed = (await runs.ListRunResults(rpb.ListRunResultsRequest(run=sql.uuid))).results
    assert [r.name for r in listed] == ["result.csv"]
    data = bytearray()
    async for message in runs.DownloadRunResult(
        rpb.DownloadRunResultRequest(run=sql.uuid, name="result.csv")
    ):
        data += message.data
    assert bytes(data).split() == [b"answer", b"42"]

    (line,) = await stdout_of(channel, python.uuid)
    _, _, uid, gid, groups = line.split(" ", 4)
    assert int(uid) in (FIRST, FIRST + 1) and gid == uid and groups == "[]"


async def test_a_worker_whose_jobs_could_not_reach_its_state_directory_refuses_to_start(
    start_worker: Callable[..., subprocess.Popen[bytes]],
    interpreter: str,
    scratch: Path,
    tmp_path: Path,
) -> None:
    closed = scratch / "closed"
    closed.mkdir(mode=0o700, exist_ok=True)
    args = ("--job-users", str(FIRST), "--state-dir", str(closed / "state"))
    worker = start_worker(*args, python=interpreter)
    assert worker.wait(timeout=60) == 2
    log = (tmp_path / "worker-0.log").read_text()
    assert f"batchyard worker: --job-users: uid {FIRST}: cannot reach the state directory" in log


async def test_a_worker_whose_interpreter_job_uids_cannot_run_refuses_to_start(
    start_worker: Callable[..., subprocess.Popen[bytes]],
    interpreter: str,
    scratch: Path,
    tmp_path: Path,
) -> None:
    if interpreter == sys.executable:
        pytest.skip("the suite's interpreter is open to other users here")
    worker = start_worker("--job-users", str(FIRST), "--state-dir", str(scratch / "refused"))
    assert worker.wait(timeout=60) == 2
    log = (tmp_path / "worker-0.log").read_text()
    assert f"--job-users: uid {FIRST} cannot run the worker's interpreter" in log
    assert "Permission denied" in log
