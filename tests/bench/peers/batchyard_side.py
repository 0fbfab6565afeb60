"""Batchyard's side of a round: a real server (and, for the run phase, one worker), each
in its own process as users run them, on a fresh database of the shared PostgreSQL;
measured with the functions of Batchyard's own benches (tests/bench/submit.py and
tests/bench/e2e.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from batchyard.client.connection import aio_channel
from batchyard.v1 import run_service_pb2_grpc
from tests.bench import e2e, submit
from tests.bench.common import bench_worker, percentile
from tests.keys import TEST_KEYS_ENV
from tests.processes import free_port, stop, wait_serving


@contextlib.asynccontextmanager
async def server_on(dsn: str, scratch: Path) -> AsyncIterator[str]:
    """A server on the database `dsn` (migrated and bootstrapped first); yields its
    target and leaves its admin token in BATCHYARD_TOKEN, as tests/bench/common.py does."""
    target = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "BATCHYARD_LOG_LEVEL": "warning",
        "BATCHYARD_LOG_FORMAT": "json",
        **TEST_KEYS_ENV,  # an external database needs a key to seal job secrets with
    }
    env.pop("DATABASE_URL", None)
    env.pop("BATCHYARD_DATABASE_URL", None)
    server = [sys.executable, "-m", "batchyard.server"]
    database = ["--database-url", dsn]
    made = subprocess.run(
        [*server, "bootstrap", *database], env=env, capture_output=True, text=True, check=True
    )
    os.environ["BATCHYARD_TOKEN"] = made.stdout.strip()
    cmd = [
        *server,
        "--listen",
        target,
        *database,
        "--pool-size",
        "20",
        "--artifacts",
        str(scratch / "artifacts"),
    ]
    with (scratch / "server.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        await wait_serving(target, proc, timeout=60)
        yield target
    finally:
        await stop(proc)


async def enqueue_phase(dsn: str, scratch: Path, p: dict[str, Any]) -> dict[str, float | None]:
    async with server_on(dsn, scratch) as target, grpc.aio.insecure_channel(target) as channel:
        stub = await submit.prepare(channel)
        await submit.single(stub, 1, p["in_flight"])  # warm-up
        single_50 = await submit.single(stub, p["seconds"], p["in_flight"])
        single_1 = await submit.single(stub, p["seconds"], 1)
        await submit.batch(stub, p["batch"], 1)  # warm-up
        batch = await submit.batch(stub, p["batch"], p["batches"])
    return {"single_50": single_50, "single_1": single_1, "batch": batch}


async def run_phase(
    dsn: str, stats: tuple[str, str], scratch: Path, p: dict[str, Any]
) -> dict[str, float | None]:
    """`stats`: (a DSN of another database of the server, this database's name), to read
    pg_stat_database with."""
    async with (
        server_on(dsn, scratch) as target,
        bench_worker(target, scratch, p["concurrency"]),
        aio_channel(target) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        await e2e.define(channel, "true", e2e.shell("true"))
        with e2e.start_fifo(scratch) as fifo:
            await e2e.define(channel, "probe", e2e.probe_config(fifo))
            await e2e.start_latency(stub, fifo, p["latency_warmup"])
            client, database = await e2e.start_latency(stub, fifo, p["latency_runs"])
        result = await e2e.throughput(stub, p["e2e_jobs"], stats=stats)
    return {
        "lat_client_p50": percentile(client, 50),
        "lat_client_p99": percentile(client, 99),
        "lat_db_p50": percentile(database, 50),
        "lat_db_p99": percentile(database, 99),
        "e2e": result.rate,
        "commits": result.commits_per_run,
    }
