"""Fault test (marked, bounded): jobs print numbered lines while the server is restarted
several times; followers reconnect from their last position.

Checks: the stored log of each run is exactly what its job printed, and every follower saw
every line once, in order. Order is per stream: stdout and stderr are two pipes, so which of
two lines on different streams came first is not knowable (as with any log collector).

    uv run pytest -m fault tests/e2e/test_log_faults.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import grpc
import pytest

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_service_pb2_grpc,
    log_pb2,
    log_service_pb2_grpc,
    run_service_pb2_grpc,
)
from batchyard.v1 import log_service_pb2 as lpb
from tests.e2e.jobs import define, submit, wait_for
from tests.processes import free_port, start_server, stop, wait_serving

pytestmark = pytest.mark.fault

RUNS = 4
LINES = 6000  # per run, ~15 s of output each
RESTARTS = 3
JOB = (
    "import sys, time\n"
    "for i in range(1, {lines} + 1):\n"
    "    out = sys.stdout if i % 3 else sys.stderr\n"
    "    print(f'out {{i}}' if i % 3 else f'err {{i}}', file=out, flush=True)\n"
    "    if i % 100 == 0: time.sleep(0.25)\n"
)


def expected(lines: int) -> list[str]:
    return [f"out {i}" if i % 3 else f"err {i}" for i in range(1, lines + 1)]


def by_stream(messages: list[str]) -> tuple[list[str], list[str]]:
    return [m for m in messages if m.startswith("out")], [
        m for m in messages if m.startswith("err")
    ]


async def follow(target: str, run_id: str, seen: list[str]) -> None:
    """Follow the job's lines, reconnecting from the last position after every failure."""
    position = log_pb2.LogPosition()
    streams = [log_pb2.LOG_STREAM_STDOUT, log_pb2.LOG_STREAM_STDERR]
    while True:
        try:
            async with aio_channel(target) as channel:
                logs = log_service_pb2_grpc.LogServiceStub(channel)
                request = lpb.TailLogsRequest(run=run_id, after=position, streams=streams)
                async for response in logs.TailLogs(request):
                    seen += [e.message for e in response.entries]
                    position = response.position
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise
            await asyncio.sleep(0.2)


async def test_followers_survive_server_restarts(tmp_path, database_url):
    workspace = tmp_path / "workspace"
    (workspace / "jobs").mkdir(parents=True)
    (workspace / "jobs" / "count.py").write_text(JOB.format(lines=LINES))
    target = f"127.0.0.1:{free_port()}"
    server_args = ("--listen", target, "--database-url", database_url, "--grace", "1")
    log = tmp_path / "server.log"
    server = start_server(*server_args, log=log)
    env = {**os.environ, "BATCHYARD_LOG_FORMAT": "json"}
    worker_cmd = [
        sys.executable,
        "-m",
        "batchyard.worker",
        "--server",
        target,
        "--slots",
        str(RUNS),
        "--workspace-root",
        str(workspace),
        "--state-dir",
        str(tmp_path / "state"),
    ]
    with (tmp_path / "worker.log").open("ab") as worker_log:
        worker = subprocess.Popen(worker_cmd, stdout=worker_log, stderr=subprocess.STDOUT, env=env)
    try:
        await wait_serving(target, server)
        async with aio_channel(target) as channel:
            definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
            config = {
                "type": "JOB_TYPE_PYTHON",
                "source": {"workspace": {"path": "jobs"}},
                "sourceLocation": "count.py",
            }
            await define(definitions, "count", config)
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            run_ids = [(await submit(stub, "count")).uuid for _ in range(RUNS)]
        seen: dict[str, list[str]] = {run_id: [] for run_id in run_ids}
        followers = [
            asyncio.create_task(follow(target, run_id, seen[run_id])) for run_id in run_ids
        ]
        for _ in range(RESTARTS):
            await asyncio.sleep(3)
            assert await stop(server) == 0
            server = start_server(*server_args, log=log)
            await wait_serving(target, server)
        async with aio_channel(target) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            for run_id in run_ids:
                final = await wait_for(stub, run_id, timeout=120)
                assert final.attempts[-1].exit_code == 0, final
        await asyncio.wait_for(asyncio.gather(*followers), 60)
        want = expected(LINES)
        async with aio_channel(target) as channel:
            logs = log_service_pb2_grpc.LogServiceStub(channel)
            for run_id in run_ids:
                stored, token = [], ""
                while True:
                    page = await logs.GetLogs(
                        lpb.GetLogsRequest(
                            run=run_id,
                            page_token=token,
                            page_size=5000,
                            streams=[log_pb2.LOG_STREAM_STDOUT, log_pb2.LOG_STREAM_STDERR],
                        )
                    )
                    stored += [e.message for e in page.entries]
                    token = page.next_page_token
                    if not token:
                        break
                assert by_stream(stored) == by_stream(want), f"run {run_id}: stored log differs"
                assert by_stream(seen[run_id]) == by_stream(want), f"run {run_id}: follower"
                assert sorted(stored) == sorted(want) and len(seen[run_id]) == len(want)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if server.poll() is None:
            await stop(server)
