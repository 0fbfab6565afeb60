"""Through a real worker process (which runs attempts in cgroups where the host allows it):
a cancelled job's setsid grandchild and daemon are gone, and `runs get` shows the peak
memory and CPU time of each attempt."""

from __future__ import annotations

import asyncio
import os
import sys

from batchyard.v1 import run_pb2
from batchyard.v1 import run_service_pb2 as rpb
from tests.client.cli_runner import Cli
from tests.e2e.jobs import define, submit, wait_for
from tests.worker.jobs import living
from tests.worker.jobs import wait_for as wait_until

ESCAPES = """
setsid sleep 1000 &
echo "$!" > "$PIDS/setsid"
"$PYTHON" -c 'import os, sys, time
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    sys.exit(0)
open(os.environ["PIDS"] + "/daemon", "w").write(str(os.getpid()))
os.close(1)
os.close(2)
time.sleep(1000)'
sleep 1000
"""
BURNS = """
import time
block = bytearray(48 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
end = time.process_time() + 0.25
while time.process_time() < end:
    pass
"""


def pids(folder) -> list[int]:
    return [int(p.read_text()) for p in folder.iterdir() if p.read_text().strip()]


async def test_cancel_kills_setsid_and_daemon_escapees(definitions, runs, tmp_path, start_worker):
    start_worker()
    folder = tmp_path / "pids"
    folder.mkdir()
    env = {"PIDS": str(folder), "PYTHON": sys.executable}
    await define(definitions, "escapes", {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh",
                                          "args": ["-c", ESCAPES], "env": env})  # fmt: skip
    run = await submit(runs, "escapes")
    await wait_until(lambda: len(list(folder.iterdir())) == 2, "the escapees", within=30)
    await asyncio.sleep(0.2)  # both files written
    started = pids(folder)
    assert len(living(started)) == 2
    try:
        await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
        await wait_for(runs, run.uuid)
        await wait_until(lambda: not living(started), "the escapees to die", within=10)
    finally:
        for pid in living(started):
            os.kill(pid, 9)


async def test_runs_get_shows_peak_memory_and_cpu_time(
    capsys, definitions, runs, target, tmp_path, start_worker
):
    start_worker()
    await define(definitions, "burns", {"type": "JOB_TYPE_PYTHON",
                                        "source": {"inline": {"text": BURNS}}})  # fmt: skip
    run = await submit(runs, "burns")
    got = await wait_for(runs, run.uuid)
    assert got.status == run_pb2.RUN_STATUS_SUCCEEDED, got.message
    (attempt,) = got.attempts
    assert attempt.peak_memory_bytes >= 48 << 20
    assert attempt.cpu_time.ToMicroseconds() >= 250_000
    code, out, _ = await Cli(capsys, target, "runs")("get", run.uuid)
    assert code == 0
    header = next(line for line in out.splitlines() if "EXIT CODE" in line)
    assert header.split()[-3:] == ["MEMORY", "CPU", "MESSAGE"]
    row = out.splitlines()[out.splitlines().index(header) + 1]
    assert " MiB " in row and "s " in row
