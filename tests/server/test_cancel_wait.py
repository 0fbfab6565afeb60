"""WaitForCancel: a worker's long-poll answered the moment its run's cancel is requested,
by this replica or another one (NOTIFY); fenced like every worker call. And a run whose
cancel is pending says so in its message, which turns to "cancelled" only when it ends."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from batchyard.client.connection import aio_channel
from batchyard.v1 import run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_control_pb2 as cpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.rpc import failure
from tests.server.helpers import define, get, lease, submit


def wait_request(leased, seconds: int = 20, **changes) -> cpb.WaitForCancelRequest:
    fields = {"run": leased.run, "attempt": leased.attempt, "lease_id": leased.lease_id}
    return cpb.WaitForCancelRequest(**{**fields, **changes}, wait=Duration(seconds=seconds))


async def test_the_wait_answers_when_the_cancel_comes_not_when_it_times_out(
    definitions, runs, workers
):
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    assert not (await workers.WaitForCancel(wait_request(leased, 0))).cancel_requested
    waiting = asyncio.ensure_future(workers.WaitForCancel(wait_request(leased, 50)))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid, reason="wrong input"))
    answer = await asyncio.wait_for(waiting, 10)  # long before its 50 s
    assert answer.cancel_requested


async def test_a_cancel_through_another_replica_reaches_the_waiting_worker(
    definitions, runs, workers, server_factory, admin_token
):
    other = await server_factory()
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    waiting = asyncio.ensure_future(workers.WaitForCancel(wait_request(leased, 50)))
    await asyncio.sleep(0.3)
    async with aio_channel(f"127.0.0.1:{other.port}", token=admin_token) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        await stub.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    assert (await asyncio.wait_for(waiting, 10)).cancel_requested


async def test_status_and_message_agree_while_the_cancel_is_pending(definitions, runs, workers):
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid, reason="wrong input"))
    pending = await get(runs, run.uuid)
    assert pending.status == run_pb2.RUN_STATUS_RUNNING and pending.cancel_requested
    assert pending.message == "cancel requested by user: wrong input"
    await workers.CompleteRun(
        wpb.CompleteRunRequest(
            run=leased.run,
            attempt=leased.attempt,
            lease_id=leased.lease_id,
            status=run_pb2.RUN_STATUS_CANCELLED,
            reason=run_pb2.RUN_REASON_CANCELLED_BY_USER,
            message="cancelled by user",
        )
    )
    ended = await get(runs, run.uuid)
    assert ended.status == run_pb2.RUN_STATUS_CANCELLED
    assert ended.message == "cancelled by user: wrong input"


async def test_the_wait_is_fenced_and_checked(definitions, runs, workers):
    await define(definitions)
    await submit(runs, "job")
    (leased,) = await lease(workers)
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await workers.WaitForCancel(wait_request(leased, 0, attempt=2))
    got = failure(stale.value)
    assert got.code == grpc.StatusCode.ABORTED and got.reason == "LEASE_LOST"
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await workers.WaitForCancel(wait_request(leased, 61))
    got = failure(wrong.value)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT and "wait" in got.fields
