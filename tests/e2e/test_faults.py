"""Fault test (marked, bounded): workers are kill -9ed at random and restarted, and the
server is restarted once, while a few hundred short jobs run.

Checks: every run ends in exactly one terminal state, none is lost; no stale write was
accepted (an attempt the rescuer ended stays as it left it, only the last attempt can have
succeeded); no process of a job outlives its attempt.

    uv run pytest -m fault tests/e2e/test_faults.py
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time

import asyncpg
import pytest

from batchyard.client.connection import aio_channel
from batchyard.v1 import definition_service_pb2_grpc, run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e.jobs import alive, define, submit
from tests.processes import free_port, start_server, stop, wait_serving

pytestmark = pytest.mark.fault

RUNS = 300
WORKERS = 3
SEED = int(os.environ.get("BATCHYARD_FAULT_SEED", "20261121"))
TIME_LIMIT = 240.0


def start_worker(target: str, tmp_path, index: int, slots: int = 4) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BATCHYARD_LOG_FORMAT": "json"}
    cmd = [
        sys.executable,
        "-m",
        "batchyard.worker",
        "--server",
        target,
        "--slots",
        str(slots),
        "--workspace-root",
        str(tmp_path),
        "--state-dir",
        str(tmp_path / f"state-{index}"),
        "--kill-grace",
        "1",
    ]
    with (tmp_path / f"worker-{index}.log").open("ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


async def unfinished(stub) -> int:
    statuses = [run_pb2.RUN_STATUS_PENDING, run_pb2.RUN_STATUS_RUNNING]
    count, token = 0, ""
    while True:
        page = await stub.ListRuns(
            rpb.ListRunsRequest(page_size=1000, page_token=token, statuses=statuses)
        )
        count += len(page.runs)
        token = page.next_page_token
        if not token:
            return count


async def test_kill_workers_and_restart_the_server(tmp_path, database_url):
    rng = random.Random(SEED)
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    target = f"127.0.0.1:{free_port()}"
    server_args = (
        "--listen",
        target,
        "--database-url",
        database_url,
        "--lease-ttl",
        "1.5",
        "--rescue-interval",
        "0.2",
        "--grace",
        "2",
    )
    log = tmp_path / "server.log"
    server = start_server(*server_args, log=log)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        await wait_serving(target, server)
        async with aio_channel(target) as channel:
            definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
            script = f"touch {pids_dir}/$$; sleep 0.$(( $$ % 4 )); (sleep 0.2) & wait"
            config = {
                "type": "JOB_TYPE_SHELL",
                "sourceLocation": "/bin/sh",
                "args": ["-c", script],
                "retryStrategy": {"numRetries": 20, "delayBetweenRetries": "0s"},
            }
            await define(definitions, "chaos", config)
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            submitted = [(await submit(stub, "chaos")).uuid for _ in range(RUNS)]

        workers = [start_worker(target, tmp_path, i) for i in range(WORKERS)]
        started = time.monotonic()
        restarted_server = False
        next_index = WORKERS
        while time.monotonic() - started < TIME_LIMIT:
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            victim = rng.randrange(len(workers))
            workers[victim].kill()
            workers[victim].wait()
            workers[victim] = start_worker(target, tmp_path, next_index)
            next_index += 1
            if not restarted_server and time.monotonic() - started > 3:
                assert await stop(server) == 0
                server = start_server(*server_args, log=log)
                await wait_serving(target, server)
                restarted_server = True
            async with aio_channel(target) as channel:
                left = await unfinished(run_service_pb2_grpc.RunServiceStub(channel))
            if left == 0:
                break
        assert restarted_server
        assert left == 0, f"{left} runs did not finish within {TIME_LIMIT}s"
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if server.poll() is None:
            await stop(server)

    conn = await asyncpg.connect(database_url)
    try:
        runs = await conn.fetch("SELECT id::text, status, attempt FROM runs")
        attempts = await conn.fetch(
            "SELECT run_id::text, number, status, reason, ended_by"
            " FROM run_attempts ORDER BY run_id, number"
        )
    finally:
        await conn.close()
    assert sorted(r["id"] for r in runs) == sorted(submitted), "no run lost, none invented"
    assert all(r["status"] == "SUCCEEDED" for r in runs), [
        r for r in runs if r["status"] != "SUCCEEDED"
    ]
    by_run: dict[str, list] = {}
    for a in attempts:
        by_run.setdefault(a["run_id"], []).append(a)
    for run in runs:
        tries = by_run[run["id"]]
        assert [a["number"] for a in tries] == list(range(1, run["attempt"] + 1))
        assert [a["status"] for a in tries].count("SUCCEEDED") == 1
        assert tries[-1]["status"] == "SUCCEEDED" and tries[-1]["ended_by"] == "worker"
        for earlier in tries[:-1]:
            assert earlier["ended_by"] in ("rescuer", "release"), earlier
            if earlier["ended_by"] == "rescuer":
                assert (earlier["status"], earlier["reason"]) == ("FAILED", "WORKER_LOST")
    pids = [int(p.name) for p in pids_dir.iterdir()]
    assert len(pids) >= RUNS
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert [p for p in pids if alive(p)] == [], "a job process outlived its attempt"
    rescued = sum(a["ended_by"] == "rescuer" for a in attempts)
    assert rescued > 0, "the faults hit no running attempt: the test proved nothing"
    print(f"fault seed {SEED}: {len(attempts)} attempts for {RUNS} runs, {rescued} rescued")
