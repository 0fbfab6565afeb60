"""Log benchmarks.

    uv run python -m tests.bench.logs [--lines 200000] [--followers 1000]

* ingest: lines/s stored through AppendLogs (batches of 1,000 entries, as a worker sends);
* job: lines/s from one real job (`seq`) through a real worker to storage, and to a live
  follower;
* latency: a job printing 1,000 lines/s with the time in each line; a follower measures
  printed -> received (p50/p99);
* followers: server RSS with N concurrent TailLogs followers on 10 running runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import grpc
import psutil
from google.protobuf import duration_pb2, json_format

from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    log_pb2,
    log_service_pb2_grpc,
    run_pb2,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import log_service_pb2 as lpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.bench.common import bench_server, run


async def define(channel: grpc.aio.Channel, name: str, config: dict) -> None:
    stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    definition = json_format.ParseDict(
        {"name": name, "config": config}, definition_pb2.Definition()
    )
    await stub.CreateDefinition(
        definition_service_pb2.CreateDefinitionRequest(definition=definition)
    )


async def lease_one(channel: grpc.aio.Channel, queue: str) -> wpb.LeasedRun:
    workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
    reply = await workers.LeaseRuns(
        wpb.LeaseRunsRequest(
            worker_id="bench", queues=[queue], max_runs=1, wait=duration_pb2.Duration(seconds=5)
        )
    )
    return reply.runs[0]


def batch(leased: wpb.LeasedRun, first: int, count: int) -> wpb.AppendLogsRequest:
    entries = [
        log_pb2.LogEntry(
            seq=seq,
            stream=log_pb2.LOG_STREAM_STDOUT,
            level=log_pb2.LOG_LEVEL_INFO,
            message=f"line {seq:08d} of the benchmark",
        )
        for seq in range(first, first + count)
    ]
    return wpb.AppendLogsRequest(
        run=leased.run, attempt=leased.attempt, lease_id=leased.lease_id, entries=entries
    )


async def ingest(channel: grpc.aio.Channel, lines: int) -> float:
    await define(
        channel,
        "ingest",
        {"type": "JOB_TYPE_SHELL", "sourceLocation": "true", "queue": "bench-ingest"},
    )
    runs = run_service_pb2_grpc.RunServiceStub(channel)
    await runs.SubmitRun(rpb.SubmitRunRequest(definition="ingest"))
    leased = await lease_one(channel, "bench-ingest")
    workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
    requests = [batch(leased, first, 1000) for first in range(1, lines + 1, 1000)]  # built up front
    started = time.perf_counter()
    for start in range(0, len(requests), 8):  # calls of 8 messages, as a worker's flush cycle
        await workers.AppendLogs(iter(requests[start : start + 8]))
    return lines / (time.perf_counter() - started)


async def followers(channel_target: str, server_pid: int, count: int) -> tuple[float, float]:
    proc = psutil.Process(server_pid)
    async with grpc.aio.insecure_channel(channel_target) as channel:
        await define(
            channel,
            "followed",
            {"type": "JOB_TYPE_SHELL", "sourceLocation": "true", "queue": "bench-follow"},
        )
        runs = run_service_pb2_grpc.RunServiceStub(channel)
        leased = []
        for _ in range(10):
            await runs.SubmitRun(rpb.SubmitRunRequest(definition="followed"))
            leased.append(await lease_one(channel, "bench-follow"))
        before = proc.memory_info().rss / 2**20
        logs = log_service_pb2_grpc.LogServiceStub(channel)
        received = 0

        async def follow(run_id: str) -> None:
            nonlocal received
            async for response in logs.TailLogs(lpb.TailLogsRequest(run=run_id)):
                received += len(response.entries)

        tasks = [asyncio.create_task(follow(leased[i % 10].run)) for i in range(count)]
        workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
        for step in range(5):
            for item in leased:
                await workers.AppendLogs(iter([batch(item, step * 100 + 1, 100)]))
            await asyncio.sleep(0.5)
        while received < count * 500:
            await asyncio.sleep(0.2)
        after = proc.memory_info().rss / 2**20
        for item in leased:
            await workers.CompleteRun(
                wpb.CompleteRunRequest(
                    run=item.run,
                    attempt=item.attempt,
                    lease_id=item.lease_id,
                    status=run_pb2.RUN_STATUS_SUCCEEDED,
                )
            )
        await asyncio.gather(*tasks)
        return before, after


def server_pid(target: str) -> int:
    port = target.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "batchyard.server" in cmd and port in cmd:
            return proc.pid
    raise RuntimeError("server process not found")


async def main(args: argparse.Namespace) -> None:
    async with bench_server() as (target, _scratch):
        async with grpc.aio.insecure_channel(target) as channel:
            rate = await ingest(channel, args.lines)
            print(f"AppendLogs ingest (1,000-entry batches): {rate:,.0f} lines/s stored")
        before, after = await followers(target, server_pid(target), args.followers)
        grown = after - before
        print(f"{args.followers} TailLogs followers: server RSS {before:.0f} -> {after:.0f} MiB")
        print(f"  (+{grown:.0f} MiB for the followers)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--followers", type=int, default=1000)
    run(main(parser.parse_args()))
