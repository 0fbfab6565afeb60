"""Leasing next to a huge paused queue: lease latency and end-to-end throughput of the
`default` queue on an empty database, then with BACKLOG pending runs held in a paused
queue (and FINISHED finished runs), each on a fresh server and embedded PostgreSQL.

    uv run python -m tests.bench.paused_backlog [--backlog 1000000] [--finished 200000]
        [--runs 3000] [--slots 32] [--lease-calls 300] [--latency-runs 100]

* LeaseRuns latency: `--lease-calls` calls with wait 0 for `default` (nothing to lease:
  the statement's own cost), p50/p99, from a second "worker" beside the real one;
* start latency: SubmitRun -> the job's process running (the FIFO probe of e2e.py);
* throughput: `--runs` trivial runs through one worker of `--slots` slots (e2e.py).

The worker serves `default` only; the lease probe names `held` too (a worker serving a
paused queue). Compare the two sets of numbers within one run of the bench.

The backlog is written with SQL (one INSERT ... SELECT from a run submitted through the
API into the paused queue): 1,000,000 submits through the API would take minutes and
measure the submit path, not leasing. The EXPLAIN of the lease statement is printed
with the backlog in place.
"""

from __future__ import annotations

import argparse
import time

import asyncpg
import grpc

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    queue_pb2,
    queue_service_pb2_grpc,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import queue_service_pb2 as qpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.bench.common import bench_server, bench_worker, run, summary
from tests.bench.e2e import define, embedded_dsn, probe_config, shell, start_fifo, start_latency
from tests.bench.e2e import throughput as run_throughput

COPY_HELD = """
WITH one AS (SELECT * FROM runs WHERE queue = 'held' LIMIT 1),
made AS (
    INSERT INTO runs (id, workspace_id, definition_id, definition_name, definition_version,
                      queue, priority, status, reason, payload_size, submitted_at,
                      ended_at)
    SELECT gen_random_uuid(), one.workspace_id, one.definition_id, one.definition_name,
           one.definition_version, 'held', one.priority, $2, 'RECENTLY_SUBMITTED', 0,
           clock_timestamp(), CASE WHEN $2 = 'PENDING' THEN NULL ELSE clock_timestamp() END
    FROM one, generate_series(1, $1)
    RETURNING id
)
INSERT INTO run_specs (run_id, payload, config_id)
SELECT made.id, ''::bytea, s.config_id
FROM made, (SELECT config_id FROM run_specs WHERE run_id = (SELECT id FROM one)) s
"""

EXPLAIN_LEASE = """
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
WITH qs AS (
    SELECT q.name, q.priority, 10 AS room FROM queues q
    WHERE q.workspace_id = (SELECT id FROM workspaces WHERE name = 'default')
      AND q.name = ANY('{default,held}'::text[]) AND q.state = 'ENABLED'
      AND q.concurrency_limit IS NULL
)
SELECT c.id FROM qs CROSS JOIN LATERAL (
    SELECT p.id, p.priority, p.submitted_at FROM runs p
    WHERE p.status = 'PENDING'
      AND p.workspace_id = (SELECT id FROM workspaces WHERE name = 'default')
      AND p.queue = qs.name AND p.available_at <= clock_timestamp()
    ORDER BY p.priority DESC, p.submitted_at, p.id LIMIT 10 FOR UPDATE SKIP LOCKED) c
ORDER BY qs.priority DESC, c.priority DESC, c.submitted_at, c.id LIMIT 10
"""


async def fill(channel: grpc.aio.Channel, dsn: str, backlog: int, finished: int) -> float:
    """A paused queue `held` with `backlog` pending runs and `finished` finished ones."""
    queues = queue_service_pb2_grpc.QueueServiceStub(channel)
    held = queue_pb2.Queue(name="held", state=queue_pb2.QUEUE_STATE_PAUSED)
    await queues.CreateQueue(qpb.CreateQueueRequest(queue=held))
    runs = run_service_pb2_grpc.RunServiceStub(channel)
    seed = rpb.SubmitRunRequest(definition="true")
    seed.overrides.queue = "held"
    await runs.SubmitRun(seed)
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET statement_timeout = 0")
        if finished:
            await conn.execute(COPY_HELD, finished, "SUCCEEDED")
        await conn.execute(COPY_HELD, backlog - 1, "PENDING")
        await conn.execute("VACUUM ANALYZE runs")
        await conn.execute("VACUUM ANALYZE run_specs")
        await conn.execute("CHECKPOINT")  # the backlog's writes done before measuring
    finally:
        await conn.close()
    return time.perf_counter() - started


async def lease_latency(channel: grpc.aio.Channel, calls: int) -> list[float]:
    stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
    request = wpb.LeaseRunsRequest(worker_id="bench-probe", queues=["default", "held"], max_runs=10)
    request.wait.FromSeconds(0)
    out = []
    for _ in range(calls):
        began = time.perf_counter()
        reply = await stub.LeaseRuns(request)
        out.append((time.perf_counter() - began) * 1e3)
        assert not reply.runs, "the probe must find nothing to lease"
    return out


async def explain(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():  # FOR UPDATE: roll back what it locked
            rows = await conn.fetch(EXPLAIN_LEASE)
            raise _Rollback("\n".join(r[0] for r in rows))
    except _Rollback as plan:
        return str(plan)
    finally:
        await conn.close()


class _Rollback(Exception):
    pass


async def measure(args: argparse.Namespace, backlog: int) -> None:
    async with bench_server() as (target, scratch), aio_channel(target) as channel:
        await define(channel, "true", shell("true"))
        dsn = embedded_dsn(scratch / "pg", "batchyard")
        label = f"{backlog:,} runs held in a paused queue" if backlog else "empty database"
        if backlog:
            took = await fill(channel, dsn, backlog, args.finished)
            print(f"[{label}] wrote the backlog (+{args.finished:,} finished) in {took:.1f} s")
        async with bench_worker(target, scratch, args.slots):
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            await lease_latency(channel, 30)  # warm-up
            leases = await lease_latency(channel, args.lease_calls)
            print(f"[{label}] LeaseRuns, nothing to lease: {summary(leases)}")
            with start_fifo(scratch) as fifo:
                await define(channel, "probe", probe_config(fifo))
                await start_latency(stub, fifo, 10)
                client, _ = await start_latency(stub, fifo, args.latency_runs)
            print(f"[{label}] SubmitRun -> job running: {summary(client)}")
            result = await run_throughput(stub, args.runs)
            shape = f"{args.runs} trivial runs, 1 worker x {args.slots}"
            print(f"[{label}] {shape}: {result.rate:,.0f} runs/s")
        if backlog:
            print(f"[{label}] lease statement plan:\n{await explain(dsn)}")


async def main(args: argparse.Namespace) -> None:
    await measure(args, 0)
    await measure(args, args.backlog)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--finished", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--lease-calls", type=int, default=300)
    parser.add_argument("--latency-runs", type=int, default=100)
    run(main(parser.parse_args()))
