"""Building blocks for server tests: definitions, submissions, and acting as a worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf import duration_pb2, json_format

from batchyard.v1 import definition_pb2, job_pb2, queue_pb2, run_pb2
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import queue_service_pb2 as qpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb


def shell_config(command: str = "true", **fields: Any) -> job_pb2.JobConfig:
    doc = {"type": "JOB_TYPE_SHELL", "sourceLocation": command, **fields}
    return json_format.ParseDict(doc, job_pb2.JobConfig())


async def make_queue(queues, name: str, **fields: Any) -> queue_pb2.Queue:
    """Create queue `name` (fields as in the Queue message's JSON mapping)."""
    queue = json_format.ParseDict({"name": name, **fields}, queue_pb2.Queue())
    return (await queues.CreateQueue(qpb.CreateQueueRequest(queue=queue))).queue


async def define(definitions, name: str = "job", **fields: Any) -> definition_pb2.Definition:
    config = shell_config(**fields)
    reply = await definitions.CreateDefinition(
        dpb.CreateDefinitionRequest(definition=definition_pb2.Definition(name=name, config=config))
    )
    return reply.definition


async def submit(runs, definition: str = "job", **fields: Any) -> run_pb2.Run:
    request = json_format.ParseDict({"definition": definition, **fields}, rpb.SubmitRunRequest())
    return (await runs.SubmitRun(request)).run


async def get(runs, run_id: str) -> run_pb2.Run:
    return (await runs.GetRun(rpb.GetRunRequest(run=run_id))).run


async def lease(
    workers, max_runs: int = 1, queues=("default",), wait: float = 5.0, worker_id: str = "w1"
):
    reply = await workers.LeaseRuns(
        wpb.LeaseRunsRequest(
            worker_id=worker_id,
            queues=list(queues),
            max_runs=max_runs,
            wait=duration_pb2.Duration(seconds=int(wait), nanos=int((wait % 1) * 1e9)),
        )
    )
    return list(reply.runs)


async def complete(
    workers, leased: wpb.LeasedRun, status=run_pb2.RUN_STATUS_SUCCEEDED, **fields: Any
):
    return await workers.CompleteRun(
        wpb.CompleteRunRequest(
            run=leased.run,
            attempt=leased.attempt,
            lease_id=leased.lease_id,
            status=status,
            **fields,
        )
    )


def fail_fields(exit_code: int = 1) -> dict[str, Any]:
    return {"reason": run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE, "exit_code": exit_code}


def server_command(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`batchyard server ARGS` in a clean environment (no BATCHYARD_* variables), to
    the end: for what it refuses before it starts."""
    return subprocess.run(
        [sys.executable, "-m", "batchyard.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
    )
