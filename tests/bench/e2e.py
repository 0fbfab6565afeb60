"""End to end: trivial SHELL runs (`true`) through one worker process, and the latency
from submit to RUNNING on an idle system (read from the run's own timestamps, which the
database clock writes).

    uv run python -m tests.bench.e2e [--runs 3000] [--slots 16] [--latency-runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    run_pb2,
    run_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb
from tests.bench.common import bench_server, bench_worker, run, summary

FINISHED = {run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED}


async def wait_all_done(stub: run_service_pb2_grpc.RunServiceAsyncStub) -> None:
    """Until no run is pending or running (one cheap query every 50 ms)."""
    unfinished = [run_pb2.RUN_STATUS_PENDING, run_pb2.RUN_STATUS_RUNNING]
    while (await stub.ListRuns(rpb.ListRunsRequest(page_size=1, statuses=unfinished))).runs:
        await asyncio.sleep(0.05)


async def throughput(stub: run_service_pb2_grpc.RunServiceAsyncStub, total: int) -> float:
    started = time.perf_counter()
    for start in range(0, total, 1000):
        count = min(1000, total - start)
        request = rpb.BatchSubmitRunsRequest(
            requests=[rpb.SubmitRunRequest(definition="true")] * count
        )
        await stub.BatchSubmitRuns(request)
    await wait_all_done(stub)
    return total / (time.perf_counter() - started)


async def latency(stub: run_service_pb2_grpc.RunServiceAsyncStub, count: int) -> list[float]:
    out = []
    for _ in range(count):
        run = (await stub.SubmitRun(rpb.SubmitRunRequest(definition="true"))).run
        while True:
            got = (await stub.GetRun(rpb.GetRunRequest(run=run.uuid))).run
            if got.status in FINISHED:
                break
            await asyncio.sleep(0.005)
        started = got.attempts[0].start_time.ToNanoseconds()
        out.append((started - got.submit_time.ToNanoseconds()) / 1e6)
        await asyncio.sleep(0.02)  # idle between runs
    return out


async def main(args: argparse.Namespace) -> None:
    async with (
        bench_server() as (target, scratch),
        bench_worker(target, scratch, args.slots),
        aio_channel(target) as channel,
    ):
        if True:
            definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
            config = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="true")
            await definitions.CreateDefinition(
                definition_service_pb2.CreateDefinitionRequest(
                    definition=definition_pb2.Definition(name="true", config=config)
                )
            )
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            await latency(stub, 20)  # warm-up
            values = await latency(stub, args.latency_runs)
            print(f"submit -> RUNNING on an idle system: {summary(values)}")
            rate = await throughput(stub, args.runs)
            print(f"trivial runs end to end, 1 worker x {args.slots} slots: {rate:,.0f} runs/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--latency-runs", type=int, default=200)
    run(main(parser.parse_args()))
