"""A stand-in for a worker process running one INGEST attempt, for the kill -9 tests (run as
a script, not collected).

    python ingest_parent.py STATE_DIR CONFIG_FILE

CONFIG_FILE holds the JobConfig in protobuf JSON; the target's DSN is in INGEST_TARGET_DSN
(the worker's connection "target"). It runs the attempt with the reaper, as a worker does.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from google.protobuf import json_format

from batchyard.v1 import job_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.reaper.client import Reaper


async def main(state_dir: Path, config_file: Path) -> None:
    reaper = Reaper.start()
    options = ExecutionOptions(
        state_dir=state_dir,
        workspace_root=state_dir,
        python=sys.executable,
        job_path=os.environ.get("PATH") or os.defpath,
        sql_targets={"target": os.environ["INGEST_TARGET_DSN"]},
    )
    config = json_format.Parse(config_file.read_text(), job_pb2.JobConfig())
    async with Execution(AttemptSpec("doomed", 1, config), options, reaper=reaper) as execution:
        await execution.run()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
