"""Submit throughput: single SubmitRun calls with 50 in flight and one at a time, and
BatchSubmitRuns. The runs go to a queue no worker serves.

uv run python -m tests.bench.submit [--seconds 10] [--batch 1000] [--batches 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import grpc

from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    queue_pb2,
    queue_service_pb2,
    queue_service_pb2_grpc,
    run_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb
from tests.bench.common import bench_server, run

# The token as metadata on each call: a client-side grpc.aio interceptor would cost
# throughput of its own (the machine's two cores are shared by client and server).
AUTH: list[tuple[str, str]] = []


async def single(
    stub: run_service_pb2_grpc.RunServiceAsyncStub, seconds: float, in_flight: int
) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        request = rpb.SubmitRunRequest(definition="bench")
        while time.perf_counter() < deadline:
            await stub.SubmitRun(request, metadata=AUTH)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return done / (time.perf_counter() - started)


async def batch(
    stub: run_service_pb2_grpc.RunServiceAsyncStub, size: int, batches: int, in_flight: int = 1
) -> float:
    """`batches` calls of `size` runs each, `in_flight` of them at a time."""
    request = rpb.BatchSubmitRunsRequest(requests=[rpb.SubmitRunRequest(definition="bench")] * size)
    left = batches

    async def loop() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await stub.BatchSubmitRuns(request, metadata=AUTH)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return size * batches / (time.perf_counter() - started)


async def prepare(channel: grpc.aio.Channel) -> run_service_pb2_grpc.RunServiceAsyncStub:
    """The token as call metadata, the definition "bench" (queue "nobody"), a stub."""
    AUTH[:] = [("authorization", f"Bearer {os.environ['BATCHYARD_TOKEN']}")]
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    await queues.CreateQueue(
        queue_service_pb2.CreateQueueRequest(queue=queue_pb2.Queue(name="nobody")), metadata=AUTH
    )
    definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    config = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="true", queue="nobody")
    await definitions.CreateDefinition(
        metadata=AUTH,
        request=definition_service_pb2.CreateDefinitionRequest(
            definition=definition_pb2.Definition(name="bench", config=config)
        ),
    )
    return run_service_pb2_grpc.RunServiceStub(channel)


async def main(args: argparse.Namespace) -> None:
    async with bench_server() as (target, _), grpc.aio.insecure_channel(target) as channel:
        stub = await prepare(channel)
        await single(stub, 1, args.in_flight)  # warm-up
        for in_flight in (args.in_flight, 1):
            rate = await single(stub, args.seconds, in_flight)
            print(f"single SubmitRun, {in_flight} in flight: {rate:,.0f} runs/s")
        await batch(stub, args.batch, 2)  # warm-up
        for in_flight in (1, 3):
            rate = await batch(stub, args.batch, args.batches, in_flight)
            print(f"BatchSubmitRuns of {args.batch}, {in_flight} in flight: {rate:,.0f} runs/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=30)
    run(main(parser.parse_args()))
