"""Retention under load: SubmitRun throughput (50 in flight) and submit -> RUNNING latency
(a lease loop acting as a worker, completing what it leases) on an idle database, then
while DeleteRuns deletes `--runs` finished runs (each with an attempt, a log chunk and a
result listing, seeded by SQL; one shared configuration); how long the deletion took;
the database size per finished run before and after.

uv run python -m tests.bench.retention_load [--runs 1000000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from google.protobuf import duration_pb2

from batchyard.client.connection import aio_channel
from batchyard.server.embedded import start_embedded
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    retention_service_pb2_grpc,
    run_pb2,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import retention_service_pb2 as retpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.bench.common import ROOT, run, summary
from tests.processes import bootstrap_token, free_port, start_server, stop, wait_serving

SEED_SQL = """
WITH made AS (
    INSERT INTO runs (id, workspace_id, definition_id, definition_name, definition_version,
                      queue, priority, status, reason, attempt, submitted_at, started_at,
                      ended_at)
    SELECT gen_random_uuid(), $1, $2, 'old', 1, 'old', 0, 'SUCCEEDED', '', 1,
           now() - interval '60 days', now() - interval '60 days',
           now() - interval '60 days'
    FROM generate_series(1, $3)
    RETURNING id
), specs AS (
    INSERT INTO run_specs (run_id, config_id, payload) SELECT id, $4, '' FROM made
), attempts AS (
    INSERT INTO run_attempts (run_id, number, worker_id, lease_id, status, ended_at, ended_by,
                              log_seq)
    SELECT id, 1, 'w', gen_random_uuid(), 'SUCCEEDED', now(), 'worker', 3 FROM made
), logs AS (
    INSERT INTO run_log_chunks (run_id, attempt, first_seq, last_seq, entries)
    SELECT id, 1, 1, 3, decode(repeat('ab', 150), 'hex') FROM made
)
INSERT INTO run_results (run_id, attempt, name, size_bytes, sha256, media_type)
SELECT id, 1, 'out.txt', 10, repeat('0', 64), 'text/plain' FROM made
"""


async def seed(dsn: str, count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        ws = await conn.fetchval("SELECT id FROM workspaces WHERE name = 'default'")
        definition = await conn.fetchval("SELECT id FROM definitions WHERE name = 'bench'")
        config = await conn.fetchval("SELECT config_id FROM run_specs LIMIT 1")
        for done in range(0, count, 100_000):
            await conn.execute(SEED_SQL, ws, definition, min(100_000, count - done), config)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def db_size(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        size: int = await conn.fetchval("SELECT pg_database_size(current_database())")
        return size
    finally:
        await conn.close()


async def vacuum(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM")
    finally:
        await conn.close()


async def load(channel: Any, seconds: float, stop_when: asyncio.Event | None = None) -> str:
    """Submit with 50 in flight while a lease loop leases and completes; the rates. The
    latency runs from sending SubmitRun to the LeaseRuns reply that hands the run out."""
    runs = run_service_pb2_grpc.RunServiceStub(channel)
    workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
    deadline = time.perf_counter() + seconds
    submitted, latencies = 0, []
    sent: dict[str, float] = {}

    def going() -> bool:
        return time.perf_counter() < deadline and not (stop_when and stop_when.is_set())

    async def submit() -> None:
        nonlocal submitted
        while going():
            began = time.perf_counter()
            reply = await runs.SubmitRun(rpb.SubmitRunRequest(definition="bench"))
            sent[reply.run.uuid] = began
            submitted += 1

    async def work() -> None:
        while going():
            reply = await workers.LeaseRuns(
                wpb.LeaseRunsRequest(
                    worker_id="bench",
                    queues=["bench"],
                    max_runs=100,
                    wait=duration_pb2.Duration(seconds=1),
                )
            )
            now = time.perf_counter()
            for leased in reply.runs:
                if leased.run in sent:
                    latencies.append((now - sent.pop(leased.run)) * 1000)
            await asyncio.gather(
                *(
                    workers.CompleteRun(
                        wpb.CompleteRunRequest(
                            run=r.run, attempt=r.attempt, lease_id=r.lease_id,
                            status=run_pb2.RUN_STATUS_SUCCEEDED,
                        )
                    )
                    for r in reply.runs
                )
            )  # fmt: skip

    began = time.perf_counter()
    await asyncio.gather(*(submit() for _ in range(50)), work())
    took = time.perf_counter() - began
    return f"{submitted / took:.0f} submits/s; submit->RUNNING {summary(latencies)}"


async def main(count: int, seconds: float) -> None:
    base = ROOT / ".batchyard"
    base.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-retention-", dir=base) as tmp:
        embedded = await start_embedded(Path(tmp) / "pg")
        dsn = embedded.dsn()
        target = f"127.0.0.1:{free_port()}"
        env = {"BATCHYARD_LOG_LEVEL": "warning"}
        token = bootstrap_token("--database-url", dsn, env=env)
        args = ("--listen", target, "--database-url", dsn, "--pool-size", "20")
        server = start_server(*args, log=Path(tmp) / "server.log", env=env)
        try:
            await wait_serving(target, server, timeout=60)
            await bench(target, token, dsn, count, seconds)
        finally:
            await stop(server)
            await embedded.stop()
    print(f"load average: {os.getloadavg()}")


async def bench(target: str, token: str, dsn: str, count: int, seconds: float) -> None:
    async with aio_channel(target, token=token) as channel:
        definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
        config = job_pb2.JobConfig(
            type=job_pb2.JOB_TYPE_SHELL, source_location="true", queue="bench"
        )
        request = definition_service_pb2.CreateDefinitionRequest(
            definition=definition_pb2.Definition(name="bench", config=config)
        )
        await definitions.CreateDefinition(request)
        await run_service_pb2_grpc.RunServiceStub(channel).SubmitRun(
            rpb.SubmitRunRequest(definition="bench")
        )
        empty = await db_size(dsn)
        began = time.perf_counter()
        await seed(dsn, count)
        seeded = await db_size(dsn)
        print(
            f"seeded {count} finished runs in {time.perf_counter() - began:.0f} s; "
            f"database {seeded / 1e6:.0f} MB, {(seeded - empty) / count:.0f} bytes per run"
        )
        print(f"idle:     {await load(channel, seconds)}")
        retention = retention_service_pb2_grpc.RetentionServiceStub(channel)
        done = asyncio.Event()

        async def delete() -> tuple[int, float]:
            start = time.perf_counter()
            reply = await retention.DeleteRuns(
                retpb.DeleteRunsRequest(older_than=duration_pb2.Duration(seconds=30 * 86400)),
                timeout=7200,
            )
            done.set()
            return reply.count, time.perf_counter() - start

        deleting = asyncio.create_task(delete())
        during = await load(channel, 3600, stop_when=done)
        deleted, took = await deleting
        print(f"deleting: {during}")
        print(f"DeleteRuns deleted {deleted} runs in {took:.0f} s ({deleted / took:.0f} runs/s)")
        after = await db_size(dsn)
        await vacuum(dsn)
        vacuumed = await db_size(dsn)
        print(f"database after: {after / 1e6:.0f} MB; after VACUUM {vacuumed / 1e6:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    run(main(args.runs, args.seconds))
