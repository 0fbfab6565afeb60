"""WorkerService: the lease, heartbeats, outcomes, retries, fencing and the rescuer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2

from batchyard.client.connection import aio_channel
from batchyard.v1 import run_pb2, worker_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.rpc import failure
from tests.server.helpers import complete, define, fail_fields, get, lease, make_queue, submit


async def expect(call, code):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    got = failure(info.value)
    assert got.code == code, got
    return got


async def test_lease_order_priority_then_oldest_and_queues(definitions, runs, workers, queues):
    await define(definitions)
    await make_queue(queues, "gpu")
    low = await submit(runs, "job", overrides={"priority": -5})
    first = await submit(runs, "job")
    second = await submit(runs, "job")
    high = await submit(runs, "job", overrides={"priority": 10})
    other = await submit(runs, "job", overrides={"queue": "gpu"})
    leased = await lease(workers, max_runs=3)
    assert [x.run for x in leased] == [high.uuid, first.uuid, second.uuid]
    assert [x.attempt for x in leased] == [1, 1, 1]
    rest = await lease(workers, max_runs=10, wait=0)
    assert [x.run for x in rest] == [low.uuid]
    gpu = await lease(workers, max_runs=10, queues=["gpu"], wait=0)
    assert [x.run for x in gpu] == [other.uuid]
    run = await get(runs, high.uuid)
    assert run.status == run_pb2.RUN_STATUS_RUNNING and run.attempts[0].worker_id == "w1"
    assert run.HasField("start_time")


async def test_lease_delivers_config_secrets_and_payload(definitions, runs, workers):
    await define(definitions, args=["a"], secretEnv={"TOKEN": "s3cr3t"})
    run = await submit(runs, "job", payload="cGF5bG9hZA==")
    (leased,) = await lease(workers)
    assert leased.run == run.uuid and leased.payload == b"payload"
    assert leased.config.secret_env["TOKEN"] == "s3cr3t"
    assert list(leased.config.args) == ["a"] and leased.definition_name == "job"
    assert leased.workspace == "default"


async def test_long_poll_wakes_when_work_arrives(definitions, runs, workers):
    await define(definitions)
    waiting = asyncio.create_task(lease(workers, wait=30))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    run = await submit(runs, "job")
    leased = await asyncio.wait_for(waiting, 10)
    assert [x.run for x in leased] == [run.uuid]


async def test_long_poll_returns_empty_after_its_wait(workers):
    assert await lease(workers, wait=0.2) == []


async def test_two_workers_racing_lease_each_run_once(definitions, runs, workers, target):
    await define(definitions)
    submitted = {(await submit(runs, "job")).uuid for _ in range(40)}
    async with aio_channel(target) as other_channel:
        other = worker_service_pb2_grpc.WorkerServiceStub(other_channel)
        results = await asyncio.gather(
            *(
                lease(stub, max_runs=3, wait=0, worker_id=f"w{i}")
                for i in range(10)
                for stub in (workers, other)
            )
        )
        got = [x.run for batch in results for x in batch]
        while len(got) < len(submitted):
            more = await lease(workers, max_runs=10, wait=0)
            if not more:
                break
            got += [x.run for x in more]
    assert sorted(got) == sorted(submitted), "every run leased exactly once"


async def test_bad_lease_requests(workers):
    cases = [
        (wpb.LeaseRunsRequest(worker_id="", queues=["default"], max_runs=1), "worker_id"),
        (wpb.LeaseRunsRequest(worker_id="w", queues=[], max_runs=1), "queues"),
        (wpb.LeaseRunsRequest(worker_id="w", queues=["bad queue"], max_runs=1), "queues[0]"),
        (wpb.LeaseRunsRequest(worker_id="w", queues=["default"], max_runs=0), "max_runs"),
    ]
    for request, field in cases:
        got = await expect(workers.LeaseRuns(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert field in got.fields


async def test_success_and_idempotent_completion(definitions, runs, workers):
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    reply = await complete(workers, leased, progress=100)
    assert reply.run_status == run_pb2.RUN_STATUS_SUCCEEDED
    again = await complete(workers, leased, progress=100)
    assert again.run_status == run_pb2.RUN_STATUS_SUCCEEDED
    got = await expect(
        complete(workers, leased, run_pb2.RUN_STATUS_FAILED, **fail_fields(2)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert got.reason == "OUTCOME_CONFLICT"
    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED and final.progress == 100
    assert final.HasField("end_time") and len(final.attempts) == 1
    assert final.attempts[0].status == run_pb2.RUN_STATUS_SUCCEEDED


async def test_non_zero_exit_retries_then_fails(definitions, runs, workers):
    await define(definitions, retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s"})
    run = await submit(runs, "job")
    (first,) = await lease(workers)
    reply = await complete(workers, first, run_pb2.RUN_STATUS_FAILED, **fail_fields(3))
    assert reply.run_status == run_pb2.RUN_STATUS_PENDING
    waiting = await get(runs, run.uuid)  # no delay: in the queue again at once
    assert waiting.reason == run_pb2.RUN_REASON_IN_QUEUE and waiting.num_retries_used == 1
    (second,) = await lease(workers)
    assert second.run == run.uuid and second.attempt == 2
    await complete(workers, second, run_pb2.RUN_STATUS_FAILED, **fail_fields(4))
    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED
    assert final.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert [(a.number, a.exit_code, a.reason) for a in final.attempts] == [
        (1, 3, run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE),
        (2, 4, run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE),
    ]


async def test_retry_waits_for_its_delay(definitions, runs, workers):
    await define(definitions, retryStrategy={"numRetries": 1, "delayBetweenRetries": "3600s"})
    run = await submit(runs, "job")
    (first,) = await lease(workers)
    reply = await complete(workers, first, run_pb2.RUN_STATUS_FAILED, **fail_fields(1))
    assert reply.HasField("next_attempt_time")
    waiting = await get(runs, run.uuid)
    assert waiting.next_attempt_time.seconds - waiting.attempts[0].end_time.seconds >= 3599
    assert await lease(workers, wait=0) == [], "not before its delay"


async def test_exit_code_rules_decide(definitions, runs, workers):
    rules = [{"exitCodes": [42], "action": "EXIT_CODE_ACTION_EXIT"}]
    await define(
        definitions,
        retryStrategy={"numRetries": 5, "delayBetweenRetries": "0s", "exitCodeRules": rules},
    )
    stop = await submit(runs, "job")
    (leased,) = await lease(workers)
    await complete(workers, leased, run_pb2.RUN_STATUS_FAILED, **fail_fields(42))
    assert (await get(runs, stop.uuid)).status == run_pb2.RUN_STATUS_FAILED
    retry = await submit(runs, "job")
    (leased,) = await lease(workers)
    await complete(workers, leased, run_pb2.RUN_STATUS_FAILED, **fail_fields(7))
    assert (await get(runs, retry.uuid)).status == run_pb2.RUN_STATUS_PENDING


async def test_timeout_is_retried_only_when_asked(definitions, runs, workers):
    timeout = {"reason": run_pb2.RUN_REASON_TIMEOUT}
    await define(definitions, "plain", retryStrategy={"numRetries": 2, "delayBetweenRetries": "0s"})
    await define(
        definitions,
        "again",
        retryStrategy={"numRetries": 2, "delayBetweenRetries": "0s", "retryOnTimeout": True},
    )
    plain = await submit(runs, "plain")
    (leased,) = await lease(workers)
    await complete(workers, leased, run_pb2.RUN_STATUS_FAILED, **timeout)
    final = await get(runs, plain.uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED and final.reason == run_pb2.RUN_REASON_TIMEOUT
    again = await submit(runs, "again")
    (leased,) = await lease(workers)
    await complete(workers, leased, run_pb2.RUN_STATUS_FAILED, **timeout)
    assert (await get(runs, again.uuid)).status == run_pb2.RUN_STATUS_PENDING


async def test_bad_outcomes_are_refused(definitions, runs, workers):
    await define(definitions)
    await submit(runs, "job")
    (leased,) = await lease(workers)
    cases: list[tuple[dict, str]] = [
        ({"status": run_pb2.RUN_STATUS_RUNNING}, "status"),
        ({"status": run_pb2.RUN_STATUS_FAILED}, "reason"),
        (
            {"status": run_pb2.RUN_STATUS_FAILED, "reason": run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE},
            "exit_code",
        ),
        ({"status": run_pb2.RUN_STATUS_SUCCEEDED, "progress": 101}, "progress"),
    ]
    for fields, field in cases:
        status = fields.pop("status")
        got = await expect(
            complete(workers, leased, status, **fields), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert field in got.fields


async def test_wrong_lease_or_attempt_is_lease_lost(definitions, runs, workers):
    await define(definitions)
    await submit(runs, "job")
    (leased,) = await lease(workers)
    forged = wpb.LeasedRun(
        run=leased.run, attempt=leased.attempt, lease_id="6f748a1b-251c-48b5-935a-a1974c3dbf7b"
    )
    for call in (
        complete(workers, forged),
        workers.RenewLease(
            wpb.RenewLeaseRequest(run=forged.run, attempt=forged.attempt, lease_id=forged.lease_id)
        ),
        workers.ReleaseRun(
            wpb.ReleaseRunRequest(run=forged.run, attempt=forged.attempt, lease_id=forged.lease_id)
        ),
        workers.RenewLease(
            wpb.RenewLeaseRequest(run=leased.run, attempt=2, lease_id=leased.lease_id)
        ),
    ):
        got = await expect(call, grpc.StatusCode.ABORTED)
        assert got.reason == "LEASE_LOST"
    got = await expect(
        workers.RenewLease(wpb.RenewLeaseRequest(run=leased.run, attempt=0, lease_id="x")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert {"attempt", "lease_id"} <= set(got.fields)


async def test_renew_extends_reports_progress_and_cancel(definitions, runs, workers):
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    fence = {"run": leased.run, "attempt": leased.attempt, "lease_id": leased.lease_id}
    reply = await workers.RenewLease(wpb.RenewLeaseRequest(progress=40, **fence))
    assert not reply.cancel_requested
    assert reply.lease_expire_time.ToNanoseconds() >= leased.lease_expire_time.ToNanoseconds()
    before = await get(runs, run.uuid)
    assert before.progress == 40
    await workers.RenewLease(wpb.RenewLeaseRequest(**fence))
    assert (await get(runs, run.uuid)).revision == before.revision, "a bare heartbeat is no change"
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    assert (await workers.RenewLease(wpb.RenewLeaseRequest(**fence))).cancel_requested


async def test_release_hands_the_run_back_at_once(definitions, runs, workers):
    await define(definitions, retryStrategy={"numRetries": 0})
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    await workers.ReleaseRun(
        wpb.ReleaseRunRequest(
            run=leased.run, attempt=leased.attempt, lease_id=leased.lease_id, message="shutdown"
        )
    )
    released = await get(runs, run.uuid)
    assert (
        released.status == run_pb2.RUN_STATUS_PENDING
        and released.reason == run_pb2.RUN_REASON_IN_QUEUE
    )
    assert (
        released.attempts[0].status == run_pb2.RUN_STATUS_PENDING and released.num_retries_used == 0
    )
    (again,) = await lease(workers, wait=0, worker_id="w2")
    assert again.run == run.uuid and again.attempt == 2
    got = await expect(complete(workers, leased), grpc.StatusCode.ABORTED)
    assert got.reason == "LEASE_LOST"


short_leases = pytest.mark.server(lease_ttl_seconds=0.6, rescue_interval_seconds=0.1)


@short_leases
async def test_expired_lease_becomes_a_new_attempt_then_a_failure(definitions, runs, workers):
    # One infrastructure retry, none of the job's own.
    await define(
        definitions,
        retryStrategy={"numRetries": 0, "numInfraRetries": 1, "delayBetweenRetries": "3600s"},
    )
    run = await submit(runs, "job")
    (first,) = await lease(workers, worker_id="doomed")
    # The worker stops heartbeating; the rescuer hands the run to the next worker at once.
    (second,) = await lease(workers, worker_id="w2", wait=10)
    assert second.run == run.uuid and second.attempt == 2
    lost = await get(runs, run.uuid)
    assert lost.attempts[0].reason == run_pb2.RUN_REASON_WORKER_LOST
    assert lost.attempts[0].status == run_pb2.RUN_STATUS_FAILED
    assert (lost.num_retries_used, lost.num_infra_retries_used) == (0, 1)
    assert lost.attempts[0].retry_budget == run_pb2.RETRY_BUDGET_INFRA
    # The stale worker is fenced off, whatever it tries.
    for call in (
        complete(workers, first),
        workers.RenewLease(
            wpb.RenewLeaseRequest(run=first.run, attempt=first.attempt, lease_id=first.lease_id)
        ),
    ):
        assert (await expect(call, grpc.StatusCode.ABORTED)).reason == "LEASE_LOST"
    # The second worker vanishes too: no retries are left.
    for _ in range(100):
        final = await get(runs, run.uuid)
        if final.status != run_pb2.RUN_STATUS_RUNNING:
            break
        await asyncio.sleep(0.1)
    assert (
        final.status == run_pb2.RUN_STATUS_FAILED and final.reason == run_pb2.RUN_REASON_WORKER_LOST
    )
    assert "w2" in final.message


@short_leases
async def test_heartbeats_keep_the_lease(definitions, runs, workers):
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    fence = {"run": leased.run, "attempt": leased.attempt, "lease_id": leased.lease_id}
    for _ in range(12):  # 2.4 s: four times the lease
        await workers.RenewLease(wpb.RenewLeaseRequest(**fence))
        await asyncio.sleep(0.2)
    await complete(workers, leased)
    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED and len(final.attempts) == 1


# The loop never runs in these tests: they call one pass, with a clock of their own.
rescue_by_hand = pytest.mark.server(rescue_interval_seconds=600)


@rescue_by_hand
async def test_cancel_requested_run_whose_worker_is_lost_is_cancelled(
    server, definitions, runs, workers
):
    await define(definitions, retryStrategy={"numRetries": 3})
    run = await submit(runs, "job")
    await lease(workers)
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    await server.rescuer.run_once(datetime.now(UTC) + timedelta(minutes=5))
    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED


@rescue_by_hand
async def test_a_rescue_pass_ends_only_the_leases_expired_at_its_time(
    server, definitions, runs, workers
):
    await define(definitions, retryStrategy={"numRetries": 1, "delayBetweenRetries": "3600s"})
    run = await submit(runs, "job")
    (first,) = await lease(workers, worker_id="doomed")
    assert await server.rescuer.run_once() == []  # by the database clock: still live
    assert await server.rescuer.run_once(datetime.now(UTC) + timedelta(seconds=5)) == []
    (rescued,) = await server.rescuer.run_once(datetime.now(UTC) + timedelta(seconds=31))
    assert (str(rescued.run), rescued.attempt, rescued.worker_id) == (run.uuid, 1, "doomed")
    (second,) = await lease(workers, worker_id="w2", wait=0)  # a worker lost: no delay
    assert second.run == run.uuid and second.attempt == 2
    lost = (await get(runs, run.uuid)).attempts[0]
    assert lost.reason == run_pb2.RUN_REASON_WORKER_LOST and "doomed" in lost.message
    assert (await expect(complete(workers, first), grpc.StatusCode.ABORTED)).reason == "LEASE_LOST"


async def test_the_attempt_keeps_the_usage_its_worker_measured(definitions, runs, workers):
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    usage = {"peak_memory_bytes": 64 << 20, "cpu_time": duration_pb2.Duration(nanos=310_000_000)}
    await complete(workers, leased, **usage)
    (attempt,) = (await get(runs, run.uuid)).attempts
    assert attempt.peak_memory_bytes == 64 << 20
    assert attempt.cpu_time.ToMicroseconds() == 310_000


async def test_usage_out_of_range_is_refused_and_nothing_changes(definitions, runs, workers):
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    for fields, field in (
        ({"peak_memory_bytes": -1}, "peak_memory_bytes"),
        ({"peak_memory_bytes": 2**60}, "peak_memory_bytes"),
        ({"cpu_time": duration_pb2.Duration(seconds=-1)}, "cpu_time"),
        ({"cpu_time": duration_pb2.Duration(seconds=400 * 365 * 86400)}, "cpu_time"),
    ):
        got = await expect(complete(workers, leased, **fields), grpc.StatusCode.INVALID_ARGUMENT)
        assert field in got.fields
    assert (await get(runs, run.uuid)).status == run_pb2.RUN_STATUS_RUNNING
    (attempt,) = (await get(runs, run.uuid)).attempts
    assert not attempt.HasField("peak_memory_bytes") and not attempt.HasField("cpu_time")
