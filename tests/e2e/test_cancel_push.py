"""A cancel reaches the job at once, pushed to its worker (WaitForCancel), not carried by
the next heartbeat: with a renew interval of 100 s the job still gets SIGTERM right away,
when the cancel is asked of another server replica than the one its worker talks to, and
whether the job is silent or prints all the time. The run's status and message agree at
every moment. (Latency figures: `python -m tests.bench.cancel`.)"""

from __future__ import annotations

import asyncio
import sys

import pytest

from batchyard.client.connection import aio_channel
from batchyard.v1 import run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e.jobs import define, submit, wait_for

JOB = """
import os, signal, sys, time
def on_term(*_):
    with open(os.environ["TERM_FILE"], "w") as f:
        f.write(repr(time.time()))
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
with open(os.environ["STARTED_FILE"], "w") as f:
    f.write("1")
while True:
    if os.environ.get("CHATTY") == "1":
        for _ in range(100):
            print("chatter " * 10, flush=True)
    time.sleep(0.01)
"""


def job(tmp_path, chatty: bool) -> dict:
    return {
        "type": "JOB_TYPE_SHELL",
        "sourceLocation": sys.executable,
        "args": ["-c", JOB],
        "env": {
            "TERM_FILE": str(tmp_path / "term"),
            "STARTED_FILE": str(tmp_path / "started"),
            "CHATTY": "1" if chatty else "0",
        },
    }


async def until_exists(path, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        assert loop.time() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.02)


@pytest.mark.server(lease_ttl_seconds=300)  # the heartbeat comes every 100 s
@pytest.mark.parametrize("chatty", [False, True], ids=["silent", "chatty"])
async def test_a_cancel_through_another_replica_stops_the_job_at_once(
    chatty, definitions, runs, tmp_path, start_worker, server_factory, admin_token
):
    other = await server_factory(lease_ttl_seconds=300)  # a second replica, same database
    await define(definitions, "busy", job(tmp_path, chatty))
    start_worker()  # talks to the first replica only
    run = await submit(runs, "busy")
    await until_exists(tmp_path / "started")

    async with aio_channel(f"127.0.0.1:{other.port}", token=admin_token) as channel:
        elsewhere = run_service_pb2_grpc.RunServiceStub(channel)
        asked = (await elsewhere.CancelRun(rpb.CancelRunRequest(run=run.uuid, reason="typo"))).run
        # Still running until the job stops: the message says the cancel is asked for.
        if asked.status == run_pb2.RUN_STATUS_RUNNING:
            assert asked.cancel_requested
            assert asked.message == "cancel requested by user: typo"
        final = await wait_for(elsewhere, run.uuid, timeout=30)  # far below 100 s
    assert (tmp_path / "term").exists(), "the job got SIGTERM"
    assert final.status == run_pb2.RUN_STATUS_CANCELLED
    assert final.reason == run_pb2.RUN_REASON_CANCELLED_BY_USER
    assert final.message == "cancelled by user: typo"
    assert final.attempts[-1].status == run_pb2.RUN_STATUS_CANCELLED
