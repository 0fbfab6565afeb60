"""A stand-in for a worker process, for the kill -9 tests (run as a script, not collected).

    python worker_like_parent.py STATE_DIR PID_FILE [--no-reaper] [--cgroups] [--escapees]

Starts the reaper (unless --no-reaper), then runs one attempt whose job forks grandchildren
— one in the job's process group, one that moves to a process group of its own, and with
--escapees a ``setsid`` one and a double-forked daemon — and writes their pids, the job's
pid and the reaper's pid to PID_FILE. With --cgroups the attempt runs in a cgroup of its
own (the worker's ``--process-tree=cgroup``). Then waits to be killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from batchyard.v1 import job_pb2
from batchyard.worker.execution import cgroups
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.reaper.client import Reaper

JOB = """
"$PYTHON" -c 'import os, time
os.setpgid(0, 0)
with open(os.environ["PID_FILE"], "a") as f:
    f.write(f"pid {os.getpid()} own-group\\n")
time.sleep(1000)' &
sleep 1000 &
echo "pid $! sleeper" >> "$PID_FILE"
echo "pid $$ leader" >> "$PID_FILE"
wait
"""
ESCAPEES = """
setsid sleep 1000 &
echo "pid $! setsid" >> "$PID_FILE"
"$PYTHON" -c 'import os, sys, time
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    sys.exit(0)
with open(os.environ["PID_FILE"], "a") as f:
    f.write(f"pid {os.getpid()} daemon\\n")
time.sleep(1000)' </dev/null >/dev/null 2>&1
"""


async def main(state_dir: Path, pid_file: Path, use_reaper: bool, flags: list[str]) -> None:
    reaper = Reaper.start() if use_reaper else None
    if reaper is not None:
        with pid_file.open("a") as file:
            file.write(f"reaper {reaper.pid}\n")
    tree = cgroups.detect(state_dir) if "--cgroups" in flags else None
    if reaper is not None and tree is not None:
        reaper.track_cgroup_root(tree.root)
    options = ExecutionOptions(
        state_dir=state_dir,
        workspace_root=state_dir,
        python=sys.executable,
        job_path=os.environ.get("PATH") or os.defpath,
        cgroups=tree,
    )
    script = (ESCAPEES + JOB) if "--escapees" in flags else JOB
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source_location="sh",
        args=["-c", script],
        env={"PID_FILE": str(pid_file), "PYTHON": sys.executable},
    )
    async with Execution(AttemptSpec("doomed", 1, config), options, reaper=reaper) as execution:
        await execution.run()


if __name__ == "__main__":
    flags = sys.argv[3:]
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), "--no-reaper" not in flags, flags))
