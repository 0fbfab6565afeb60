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

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    log_pb2,
    log_service_pb2_grpc,
    queue_pb2,
    queue_service_pb2,
    queue_service_pb2_grpc,
    run_pb2,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import log_service_pb2 as lpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.bench.common import bench_server, bench_worker, run, summary


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


async def make_queue(channel: grpc.aio.Channel, name: str) -> None:
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    await queues.CreateQueue(queue_service_pb2.CreateQueueRequest(queue=queue_pb2.Queue(name=name)))


async def ingest(channel: grpc.aio.Channel, lines: int) -> float:
    await make_queue(channel, "bench-ingest")
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
    async with aio_channel(channel_target) as channel:
        await make_queue(channel, "bench-follow")
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


PACED = (
    "import sys, time\n"
    "start = time.time()\n"
    "for i in range({count}):\n"
    "    while time.time() < start + i / {rate}:\n"
    "        time.sleep(0.0005)\n"
    "    print(f'{{time.time():.6f}} line {{i}}', flush=True)\n"
)


async def finished_run(runs: run_service_pb2_grpc.RunServiceAsyncStub, run_id: str) -> run_pb2.Run:
    while True:
        got = (await runs.GetRun(rpb.GetRunRequest(run=run_id))).run
        if got.status in (run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED):
            return got
        await asyncio.sleep(0.05)


async def job_to_storage(channel: grpc.aio.Channel, lines: int) -> tuple[float, float]:
    """A `seq` job: lines/s stored (attempt start -> run end, logs stored before the end)
    and lines/s to a live follower (attempt start -> last line received)."""
    await define(
        channel,
        "seq",
        {"type": "JOB_TYPE_SHELL", "sourceLocation": "seq", "args": ["1", str(lines)]},
    )
    runs = run_service_pb2_grpc.RunServiceStub(channel)
    logs = log_service_pb2_grpc.LogServiceStub(channel)
    run_id = (await runs.SubmitRun(rpb.SubmitRunRequest(definition="seq"))).run.uuid
    received, last_at = 0, 0.0
    async for response in logs.TailLogs(
        lpb.TailLogsRequest(run=run_id, streams=[log_pb2.LOG_STREAM_STDOUT])
    ):
        received += len(response.entries)
        last_at = time.time()
    done = await finished_run(runs, run_id)
    assert received == lines, f"the follower received {received} of {lines} lines"
    started = done.attempts[0].start_time.ToNanoseconds() / 1e9
    ended = done.end_time.ToNanoseconds() / 1e9
    return lines / (ended - started), lines / (last_at - started)


async def follower_latency(channel: grpc.aio.Channel, rate: int, seconds: int) -> list[float]:
    count = rate * seconds
    code = PACED.format(count=count, rate=rate)
    await define(
        channel, "paced", {"type": "JOB_TYPE_PYTHON", "source": {"inline": {"text": code}}}
    )
    runs = run_service_pb2_grpc.RunServiceStub(channel)
    logs = log_service_pb2_grpc.LogServiceStub(channel)
    run_id = (await runs.SubmitRun(rpb.SubmitRunRequest(definition="paced"))).run.uuid
    delays = []
    async for response in logs.TailLogs(
        lpb.TailLogsRequest(run=run_id, streams=[log_pb2.LOG_STREAM_STDOUT])
    ):
        now = time.time()
        delays += [(now - float(e.message.split()[0])) * 1000 for e in response.entries]
    return delays


async def main(args: argparse.Namespace) -> None:
    async with (
        bench_server() as (target, scratch),
        bench_worker(target, scratch, 4),
        aio_channel(target) as channel,
    ):
        stored, followed = await job_to_storage(channel, args.job_lines)
        print(f"one job (seq 1 {args.job_lines}): {stored:,.0f} lines/s stored,")
        print(f"  {followed:,.0f} lines/s to a live follower")
        delays = await follower_latency(channel, 1000, 10)
        print(f"follower latency at 1,000 lines/s (printed -> received): {summary(delays)}")
    async with bench_server() as (target, _scratch):
        async with aio_channel(target) as channel:
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
    parser.add_argument("--job-lines", type=int, default=1_000_000)
    parser.add_argument("--followers", type=int, default=1000)
    run(main(parser.parse_args()))
