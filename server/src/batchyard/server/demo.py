"""`batchyard dev --demo`: define a `hello` job (if it is not there) and run it once, so the
first command a newcomer types shows a job going through the whole system."""

from __future__ import annotations

import asyncio

import grpc
import structlog

from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    run_pb2,
    run_service_pb2,
    run_service_pb2_grpc,
)

log = structlog.get_logger(__name__)

HELLO = job_pb2.JobConfig(
    type=job_pb2.JOB_TYPE_SHELL,
    source_location="/bin/sh",
    args=["-c", 'echo "hello from batchyard, run $BATCHYARD_RUN_ID"; echo "::progress 100"'],
)
FINISHED = (run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED)


async def run_demo(port: int, token: str, wait_seconds: float = 60) -> run_pb2.Run:
    """Create `hello` unless it exists, submit a run, and wait for it to end."""
    auth = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
        runs = run_service_pb2_grpc.RunServiceStub(channel)
        try:
            await definitions.CreateDefinition(
                definition_service_pb2.CreateDefinitionRequest(
                    definition=definition_pb2.Definition(
                        name="hello",
                        description="The demo job of `batchyard dev --demo`",
                        config=HELLO,
                    )
                ),
                metadata=auth,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        request = run_service_pb2.SubmitRunRequest(definition="hello")
        run = (await runs.SubmitRun(request, metadata=auth)).run
        log.info("demo_run_submitted", run=run.uuid, definition="hello")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while run.status not in FINISHED and loop.time() < deadline:
            await asyncio.sleep(0.1)
            run = (
                await runs.GetRun(run_service_pb2.GetRunRequest(run=run.uuid), metadata=auth)
            ).run
        log.info(
            "demo_run_finished",
            run=run.uuid,
            status=run_pb2.RunStatus.Name(run.status).removeprefix("RUN_STATUS_"),
            message=run.message,
            see=f"batchyard runs get {run.uuid}",
        )
        return run
