"""The fleet as users see it (`batchyard workers`, `client.workers`, FleetService) and as
the lease protocol uses it: a worker is listed while it heartbeats and drops out a lease
TTL after it stops; a worker whose lease the rescuer expired is fenced — its open
long-poll answers empty, the rescued run goes to another worker — until it calls again.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from batchyard.client import AsyncClient
from batchyard.client.errors import NotFoundError
from batchyard.v1 import fleet_service_pb2, fleet_service_pb2_grpc, run_pb2, run_service_pb2
from batchyard.v1 import worker_service_pb2 as wpb
from tests.client.cli_runner import Cli
from tests.e2e.jobs import define, submit
from tests.rpc import failure


def lease_request(worker_id: str, wait: float = 0.0, **fields: Any) -> wpb.LeaseRunsRequest:
    request = wpb.LeaseRunsRequest(
        worker_id=worker_id, queues=["default"], max_runs=1, wait=duration_pb2.Duration(), **fields
    )
    request.wait.FromMilliseconds(int(wait * 1000))
    return request


SHELL = {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/true"}


@pytest.mark.server(lease_ttl_seconds=4.0, rescue_interval_seconds=600)
async def test_workers_are_listed_while_alive_and_shown_by_id(
    capsys: Any, target: str, admin_token: str, workers, definitions, runs
) -> None:
    await define(definitions, "job", SHELL)
    run = await submit(runs, "job")
    got = await workers.LeaseRuns(
        lease_request("w-busy", host="node-1", version="9.9", slots=4, slots_busy=0)
    )
    assert [r.run for r in got.runs] == [run.uuid]
    assert got.lease_ttl.ToTimedelta() == timedelta(seconds=4)
    assert got.max_outage.ToTimedelta() == timedelta(minutes=5)
    await workers.LeaseRuns(lease_request("w-idle", slots=2))

    async with AsyncClient(target, token=admin_token) as client:
        listed = [w async for w in client.workers.list()]
        assert [w.worker_id for w in listed] == ["w-busy", "w-idle"]
        busy = await client.workers.get("w-busy")
        assert (busy.host, busy.version, busy.slots, list(busy.queues)) == (
            "node-1",
            "9.9",
            4,
            ["default"],
        )
        assert [a.run for a in busy.running_attempts] == [run.uuid]
        assert busy.alive and not busy.fenced
        with pytest.raises(NotFoundError):
            await client.workers.get("never-seen")

    cli = Cli(capsys, target, "workers")
    code, out, err = await cli("list")
    assert code == 0, err
    assert "w-busy" in out and "node-1" in out and "1/4" in out and "w-idle" in out
    code, out, _ = await cli("get", "w-idle", "-o", "json")
    assert code == 0 and json.loads(out)["workerId"] == "w-idle"

    # Nobody heartbeats for longer than the TTL: they drop out of the list, `get` says gone.
    await asyncio.sleep(4.5)
    async with AsyncClient(target, token=admin_token) as client:
        assert [w.worker_id async for w in client.workers.list()] == []
        assert not (await client.workers.get("w-busy")).alive
    code, out, err = await cli("get", "w-busy")
    assert code == 0 and "gone" in out


@pytest.mark.server(rescue_interval_seconds=600)
async def test_a_fenced_worker_gets_no_work_until_it_calls_again(
    server, workers, definitions, runs
) -> None:
    await define(definitions, "job", {**SHELL, "retryStrategy": {"numInfraRetries": 2}})
    first = await submit(runs, "job")
    (leased,) = (await workers.LeaseRuns(lease_request("frozen"))).runs
    # The frozen worker's long-poll is open when its lease expires and the run is rescued.
    poll = asyncio.ensure_future(workers.LeaseRuns(lease_request("frozen", wait=20)))
    await asyncio.sleep(0.5)
    (rescued,) = await server.rescuer.run_once(datetime.now(UTC) + timedelta(minutes=1))
    assert str(rescued.run) == leased.run
    answer = await asyncio.wait_for(poll, 10)
    assert list(answer.runs) == []  # answered empty, at once, not with the rescued run
    # A live worker gets the rescued run.
    (again,) = (await workers.LeaseRuns(lease_request("healthy"))).runs
    assert (again.run, again.attempt) == (first.uuid, 2)
    # The fenced worker calls again: it proved alive, and gets work.
    second = await submit(runs, "job")
    (fresh,) = (await workers.LeaseRuns(lease_request("frozen"))).runs
    assert fresh.run == second.uuid
    done = (await runs.GetRun(run_service_pb2.GetRunRequest(run=first.uuid))).run
    assert done.attempts[0].reason == run_pb2.RUN_REASON_WORKER_LOST
    assert done.attempts[0].retry_budget == run_pb2.RETRY_BUDGET_INFRA
    assert (done.num_retries_used, done.num_infra_retries_used) == (0, 1)


async def test_bad_worker_fields_are_refused_with_the_field(workers, channel) -> None:
    bad = lease_request("w", host="h" * 201, slots=2, slots_busy=3)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await workers.LeaseRuns(bad)
    got = failure(info.value)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(got.fields) == {"host", "slots_busy"}
    fleet = fleet_service_pb2_grpc.FleetServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fleet.GetWorker(fleet_service_pb2.GetWorkerRequest(worker_id="has space"))
    assert failure(info.value).code == grpc.StatusCode.INVALID_ARGUMENT
