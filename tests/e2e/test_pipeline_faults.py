"""Fault test (marked, bounded): an array of 500 and a 50-step chain, plus a failing
branch, while workers are kill -9ed at random and restarted and the server restarts once.

Checks: every child ends exactly once (one successful attempt, the last); the array's
parent ends SUCCEEDED only after its last child; each chain step starts after the step
before it ended; the failing branch's dependents end DEPENDENCY_FAILED without ever
running and its after-any dependent runs; nothing stays PENDING.

    uv run pytest -m fault tests/e2e/test_pipeline_faults.py
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time

import asyncpg
import pytest
from google.protobuf import json_format

from batchyard.client.connection import aio_channel
from batchyard.v1 import definition_service_pb2_grpc, run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e import test_faults
from tests.e2e.jobs import define
from tests.processes import free_port, start_server, stop, wait_serving

pytestmark = [pytest.mark.fault, pytest.mark.timeout(420)]

ARRAY = 500
CHAIN = 50
WORKERS = 3
SEED = int(os.environ.get("BATCHYARD_FAULT_SEED", "20261203"))
TIME_LIMIT = 300.0
KILLS = 12
RETRIES = {"numRetries": 30, "delayBetweenRetries": "0s"}


def start_worker(target: str, tmp_path, index: int):
    """A worker of the general fault test, with 8 slots (so the kills, not the slots, are
    what the runs wait for on a loaded machine)."""
    return test_faults.start_worker(target, tmp_path, index, slots=8)


async def unfinished(stub) -> int:
    statuses = [run_pb2.RUN_STATUS_PENDING, run_pb2.RUN_STATUS_RUNNING]
    page = await stub.ListRuns(
        rpb.ListRunsRequest(page_size=1000, statuses=statuses, include_children=True)
    )
    return len(page.runs)


def entry(definition: str, **fields) -> rpb.SubmitRunRequest:
    return json_format.ParseDict({"definition": definition, **fields}, rpb.SubmitRunRequest())


async def submit_all(channel) -> dict[str, list[str]]:
    definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    short = {
        "type": "JOB_TYPE_SHELL",
        "sourceLocation": "/bin/sh",
        "args": ["-c", "sleep 0.$(( $$ % 3 ))"],
        "retryStrategy": RETRIES,
    }
    await define(definitions, "short", short)
    await define(definitions, "broken", {"type": "JOB_TYPE_SHELL", "sourceLocation": "false"})
    stub = run_service_pb2_grpc.RunServiceStub(channel)
    array = (await stub.SubmitRun(entry("short", arraySize=ARRAY))).run.uuid
    steps = [entry("short")] + [
        entry("short", dependsOn=[{"batchIndex": i - 1}]) for i in range(1, CHAIN)
    ]
    branch = [
        entry("broken"),
        entry("short", dependsOn=[{"batchIndex": CHAIN}]),
        entry("short", dependsOn=[{"batchIndex": CHAIN + 1}]),
        entry(
            "short",
            dependsOn=[{"batchIndex": CHAIN, "condition": "DEPENDENCY_CONDITION_AFTER_ANY"}],
        ),
    ]
    reply = await stub.BatchSubmitRuns(rpb.BatchSubmitRunsRequest(requests=steps + branch))
    ids = [r.run.uuid for r in reply.responses]
    return {"array": [array], "chain": ids[:CHAIN], "branch": ids[CHAIN:]}


async def test_arrays_and_chains_survive_worker_kills_and_a_server_restart(tmp_path, database_url):
    rng = random.Random(SEED)
    target = f"127.0.0.1:{free_port()}"
    server_args = ("--listen", target, "--database-url", database_url, "--lease-ttl", "1.5",
                   "--rescue-interval", "0.2", "--grace", "2")  # fmt: skip
    log = tmp_path / "server.log"
    server = start_server(*server_args, log=log)
    workers = []
    try:
        await wait_serving(target, server)
        async with aio_channel(target) as channel:
            made = await submit_all(channel)
        workers = [start_worker(target, tmp_path, i) for i in range(WORKERS)]
        started, restarted, next_index, left = time.monotonic(), False, WORKERS, -1
        while time.monotonic() - started < TIME_LIMIT:
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            if next_index - WORKERS < KILLS:  # a worker starts in seconds on a busy host
                victim = rng.randrange(len(workers))
                workers[victim].kill()
                workers[victim].wait()
                workers[victim] = start_worker(target, tmp_path, next_index)
                next_index += 1
            if not restarted and time.monotonic() - started > 3:
                assert await stop(server) == 0
                server = start_server(*server_args, log=log)
                await wait_serving(target, server)
                restarted = True
            async with aio_channel(target) as channel:
                left = await unfinished(run_service_pb2_grpc.RunServiceStub(channel))
            if left == 0:
                break
        assert restarted
        assert left == 0, f"{left} runs did not finish within {TIME_LIMIT}s"
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if server.poll() is None:
            await stop(server)
    await check(database_url, made)


async def check(database_url: str, made: dict[str, list[str]]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        runs = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id::text, status, reason, parent_id::text, started_at, ended_at,"
                " children_unfinished FROM runs"
            )
        }
        attempts: dict[str, list] = {}
        for a in await conn.fetch(
            "SELECT run_id::text, number, status, started_at, ended_at, ended_by"
            " FROM run_attempts"
            " ORDER BY run_id, number"
        ):
            attempts.setdefault(a["run_id"], []).append(a)
    finally:
        await conn.close()
    [parent] = made["array"]
    children = [r for r in runs.values() if r["parent_id"] == parent]
    assert len(children) == ARRAY
    for child in children:
        tries = attempts[child["id"]]
        assert child["status"] == "SUCCEEDED", child
        assert [a["status"] for a in tries].count("SUCCEEDED") == 1
        assert tries[-1]["status"] == "SUCCEEDED"
    assert runs[parent]["status"] == "SUCCEEDED" and runs[parent]["children_unfinished"] == 0
    assert runs[parent]["ended_at"] >= max(c["ended_at"] for c in children)
    assert parent not in attempts  # the parent never ran itself
    chain = made["chain"]
    for before, after in itertools.pairwise(chain):
        assert runs[after]["status"] == "SUCCEEDED"
        assert attempts[after][0]["started_at"] >= runs[before]["ended_at"]
    broken, second, third, anyway = made["branch"]
    assert runs[broken]["status"] == "FAILED"
    for dependent in (second, third):
        assert (runs[dependent]["status"], runs[dependent]["reason"]) == (
            "FAILED",
            "DEPENDENCY_FAILED",
        )
        assert dependent not in attempts
    assert runs[anyway]["status"] == "SUCCEEDED"
    assert not [
        r for r in runs.values() if r["status"] in ("PENDING", "WAITING", "ARRAY", "RUNNING")
    ]
    rescued = sum(a["ended_by"] == "rescuer" for tries in attempts.values() for a in tries)
    assert rescued > 0, "the kills hit no running attempt: the test proved nothing"
    total = sum(map(len, attempts.values()))
    print(f"pipeline fault seed {SEED}: {total} attempts, {rescued} ended by the rescuer")
