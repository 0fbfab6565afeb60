"""Pipelines: submit an array of 10,000; a chain of `true` runs (the delay from one run's
end to the next one's start, by the database clock); 10,000 dependents of one run (the
time its CompleteRun takes, which releases them in its transaction).

uv run python -m tests.bench.pipelines [--array 10000] [--chain 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time

import grpc
from google.protobuf import duration_pb2

from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    pipeline_pb2,
    run_pb2,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.bench.common import bench_server, bench_worker, run, summary

AUTH: list[tuple[str, str]] = []


async def define(channel: grpc.aio.Channel, name: str, queue: str) -> None:
    definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    config = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="true", queue=queue)
    await definitions.CreateDefinition(
        definition_service_pb2.CreateDefinitionRequest(
            definition=definition_pb2.Definition(name=name, config=config)
        ),
        metadata=AUTH,
    )


async def array_submit(
    stub: run_service_pb2_grpc.RunServiceAsyncStub, size: int, repeat: int
) -> None:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await stub.SubmitRun(
            rpb.SubmitRunRequest(definition="idle", array_size=size), metadata=AUTH
        )
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"SubmitRun array_size={size} (call time, client and server on one host): {summary(times)}"
    )


async def dependents_release(channel: grpc.aio.Channel, size: int, repeat: int) -> None:
    """An array of `size` waiting on one gate run; the bench leases and completes the gate
    itself (an admin token may), so CompleteRun's time is the release's."""
    stub = run_service_pb2_grpc.RunServiceStub(channel)
    workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
    times = []
    for _ in range(repeat):
        gate = (await stub.SubmitRun(rpb.SubmitRunRequest(definition="gate"), metadata=AUTH)).run
        dep = pipeline_pb2.RunDependency(run=gate.uuid)
        array = await stub.SubmitRun(
            rpb.SubmitRunRequest(definition="idle", array_size=size, depends_on=[dep]),
            metadata=AUTH,
        )
        reply = await workers.LeaseRuns(
            wpb.LeaseRunsRequest(
                worker_id="bench",
                queues=["gate"],
                max_runs=1,
                wait=duration_pb2.Duration(seconds=5),
            ),
            metadata=AUTH,
        )
        [leased] = reply.runs
        started = time.perf_counter()
        await workers.CompleteRun(
            wpb.CompleteRunRequest(
                run=leased.run,
                attempt=leased.attempt,
                lease_id=leased.lease_id,
                status=run_pb2.RUN_STATUS_SUCCEEDED,
                exit_code=0,
            ),
            metadata=AUTH,
        )
        times.append((time.perf_counter() - started) * 1000)
        page = await stub.ListRuns(
            rpb.ListRunsRequest(parent=array.run.uuid, page_size=1000), metadata=AUTH
        )
        assert all(r.reason == run_pb2.RUN_REASON_IN_QUEUE for r in page.runs), "not released"
    print(f"CompleteRun releasing {size} dependents (in its transaction): {summary(times)}")


async def chain(channel: grpc.aio.Channel, target: str, scratch, length: int) -> None:
    stub = run_service_pb2_grpc.RunServiceStub(channel)
    requests = [rpb.SubmitRunRequest(definition="step")]
    for i in range(1, length):
        dep = pipeline_pb2.RunDependency(batch_index=i - 1)
        requests.append(rpb.SubmitRunRequest(definition="step", depends_on=[dep]))
    async with bench_worker(target, scratch, 2):
        started = time.perf_counter()
        reply = await stub.BatchSubmitRuns(
            rpb.BatchSubmitRunsRequest(requests=requests), metadata=AUTH
        )
        ids = [r.run.uuid for r in reply.responses]
        while True:
            last = (await stub.GetRun(rpb.GetRunRequest(run=ids[-1]), metadata=AUTH)).run
            if last.status in (run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED):
                break
            await asyncio.sleep(0.5)
        wall = time.perf_counter() - started
    got = [(await stub.GetRun(rpb.GetRunRequest(run=i), metadata=AUTH)).run for i in ids]
    assert all(r.status == run_pb2.RUN_STATUS_SUCCEEDED for r in got)
    gaps = [
        (b.attempts[0].start_time.ToNanoseconds() - a.end_time.ToNanoseconds()) / 1e6
        for a, b in itertools.pairwise(got)
    ]
    print(f"chain of {length} `true` runs, end -> next start: {summary(gaps)}")
    print(f"chain of {length}: {wall:.1f} s wall, {length / wall:.0f} steps/s")


async def main(args: argparse.Namespace) -> None:
    async with bench_server() as (target, scratch), grpc.aio.insecure_channel(target) as channel:
        AUTH[:] = [("authorization", f"Bearer {os.environ['BATCHYARD_TOKEN']}")]
        for name, queue in (("idle", "nobody"), ("gate", "gate"), ("step", "default")):
            await define(channel, name, queue)
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        await array_submit(stub, 100, 1)  # warm-up
        await array_submit(stub, args.array, args.repeat)
        await dependents_release(channel, args.array, args.repeat)
        await chain(channel, target, scratch, args.chain)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--array", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    run(main(parser.parse_args()))
