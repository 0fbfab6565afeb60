"""Dependencies and array runs against a real server and PostgreSQL, the test acting as
the worker (the worker-process tests are in tests/e2e/test_pipelines_e2e.py)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import json_format

from batchyard.v1 import pipeline_pb2, run_pb2
from batchyard.v1 import run_service_pb2 as rpb
from tests.rpc import failure
from tests.server.helpers import complete, define, fail_fields, get, lease

PENDING, RUNNING = run_pb2.RUN_STATUS_PENDING, run_pb2.RUN_STATUS_RUNNING
SUCCEEDED, FAILED = run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED
CANCELLED = run_pb2.RUN_STATUS_CANCELLED
WAITING = run_pb2.RUN_REASON_WAITING_ON_DEPENDENCIES
DEP_FAILED = run_pb2.RUN_REASON_DEPENDENCY_FAILED
ANY = pipeline_pb2.DEPENDENCY_CONDITION_AFTER_ANY


def request(**fields) -> rpb.SubmitRunRequest:
    return json_format.ParseDict({"definition": "job", **fields}, rpb.SubmitRunRequest())


async def submit(runs, **fields) -> run_pb2.Run:
    return (await runs.SubmitRun(request(**fields))).run


async def batch(runs, *entries: dict) -> list[run_pb2.Run]:
    reply = await runs.BatchSubmitRuns(
        rpb.BatchSubmitRunsRequest(requests=[request(**e) for e in entries])
    )
    return [r.run for r in reply.responses]


async def expect(call, code):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    got = failure(info.value)
    assert got.code == code, got
    return got


async def run_one(workers, status=SUCCEEDED, **fields) -> str:
    """Lease exactly one run and end it; returns its uuid."""
    [leased] = await lease(workers, wait=2)
    await complete(workers, leased, status=status, **fields)
    return leased.run


async def leasable(workers) -> list[str]:
    """Every run leasable now (they are leased: the test then ends them)."""
    return [x.run for x in await lease(workers, max_runs=100, wait=0.3)]


async def test_a_run_waits_for_its_dependency_and_is_released_when_it_succeeds(
    definitions, runs, workers
):
    await define(definitions)
    first = await submit(runs)
    second = await submit(runs, depends_on=[{"run": first.uuid}])
    assert second.status == PENDING and second.reason == WAITING
    assert second.dependencies_waiting == 1 and second.depends_on[0].run == first.uuid
    assert first.uuid in (await get(runs, second.uuid)).message
    [leased] = await lease(workers, max_runs=10, wait=1)
    assert leased.run == first.uuid  # the waiting run is not leasable
    await complete(workers, leased)
    released = await get(runs, second.uuid)
    assert released.status == PENDING and released.reason == run_pb2.RUN_REASON_IN_QUEUE
    assert released.dependencies_waiting == 0
    assert await run_one(workers) == second.uuid


async def test_dependency_failure_cascades_through_three_levels_at_once(definitions, runs, workers):
    await define(definitions)
    a = await submit(runs)
    b = await submit(runs, depends_on=[{"run": a.uuid}])
    c = await submit(runs, depends_on=[{"run": b.uuid}])
    d = await submit(runs, depends_on=[{"run": c.uuid}])
    await run_one(workers, status=FAILED, **fail_fields())
    for child, parent in ((b, a), (c, b), (d, c)):
        got = await get(runs, child.uuid)
        assert got.status == FAILED and got.reason == DEP_FAILED, got
        assert parent.uuid in got.message and not got.attempts
    assert await leasable(workers) == []


async def test_after_any_runs_after_a_failure_and_a_cancel(definitions, runs, workers):
    await define(definitions)
    a = await submit(runs)
    cancelled = await submit(runs)
    after = await submit(
        runs,
        depends_on=[{"run": a.uuid, "condition": ANY}, {"run": cancelled.uuid, "condition": ANY}],
    )
    strict = await submit(runs, depends_on=[{"run": cancelled.uuid}])
    await runs.CancelRun(rpb.CancelRunRequest(run=cancelled.uuid))
    got = await get(runs, strict.uuid)
    assert got.status == FAILED and got.reason == DEP_FAILED and cancelled.uuid in got.message
    assert (await get(runs, after.uuid)).reason == WAITING
    await run_one(workers, status=FAILED, **fail_fields())
    assert await run_one(workers) == after.uuid


async def test_a_dependency_already_ended_is_settled_at_submit(definitions, runs, workers):
    await define(definitions)
    ok = await submit(runs)
    await run_one(workers)
    bad = await submit(runs)
    await run_one(workers, status=FAILED, **fail_fields())
    released = await submit(runs, depends_on=[{"run": ok.uuid}])
    failed = await submit(runs, depends_on=[{"run": ok.uuid}, {"run": bad.uuid}])
    assert released.status == PENDING and released.reason == run_pb2.RUN_REASON_IN_QUEUE
    assert failed.status == FAILED and failed.reason == DEP_FAILED and bad.uuid in failed.message


async def test_a_dag_in_one_batch_by_index_and_key(definitions, runs, workers):
    await define(definitions)
    extract, left, right, join = await batch(
        runs,
        {"batchKey": "extract"},
        {"dependsOn": [{"batchKey": "extract"}]},
        {"dependsOn": [{"batchIndex": 0}]},
        {"dependsOn": [{"batchIndex": 1}, {"batchIndex": 2}]},
    )
    assert join.depends_on[0].run == left.uuid and join.dependencies_waiting == 2
    assert await leasable_and_done(workers) == [extract.uuid]
    assert sorted(await leasable_and_done(workers)) == sorted([left.uuid, right.uuid])
    assert await leasable_and_done(workers) == [join.uuid]
    assert (await get(runs, join.uuid)).status == SUCCEEDED


async def leasable_and_done(workers) -> list[str]:
    got = await lease(workers, max_runs=100, wait=0.3)
    for x in got:
        await complete(workers, x)
    return [x.run for x in got]


async def test_forward_references_self_references_and_cycles_are_refused(definitions, runs):
    await define(definitions)
    for entries, field in (
        ([{"dependsOn": [{"batchIndex": 1}]}, {}], "requests[0].depends_on[0].batch_index"),
        ([{"dependsOn": [{"batchIndex": 0}]}], "requests[0].depends_on[0].batch_index"),
        (
            [{"batchKey": "a", "dependsOn": [{"batchKey": "b"}]}, {"batchKey": "b"}],
            "requests[0].depends_on[0].batch_key",
        ),
        ([{"batchKey": "a"}, {"batchKey": "a"}], "requests[1].batch_key"),
        ([{"dependsOn": [{"run": "nope"}]}], "requests[0].depends_on[0].run"),
        (
            [{"dependsOn": [{"type": "DEPENDENCY_TYPE_SEQUENTIAL"}]}],
            "requests[0].depends_on[0].type",
        ),
    ):
        got = await expect(batch(runs, *entries), grpc.StatusCode.INVALID_ARGUMENT)
        assert field in got.fields, (entries, got)
    listed = await runs.ListRuns(rpb.ListRunsRequest(include_children=True))
    assert not listed.runs  # nothing was stored


async def test_unknown_and_other_workspace_dependencies_are_not_found_like_a_missing_run(
    definitions, runs
):
    await define(definitions)
    missing = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as as_get:
        await runs.GetRun(rpb.GetRunRequest(run=missing))
    with pytest.raises(grpc.aio.AioRpcError) as as_dep:
        await submit(runs, depends_on=[{"run": missing}])
    assert as_dep.value.code() == grpc.StatusCode.NOT_FOUND
    assert as_dep.value.details() == as_get.value.details()
    assert as_dep.value.trailing_metadata() == as_get.value.trailing_metadata()


async def test_array_all_succeed_summary_and_children(definitions, runs, workers):
    await define(definitions)
    parent = await submit(runs, array_size=3)
    assert parent.status == PENDING and parent.array_size == 3
    assert parent.array_summary.size == 3 and parent.array_summary.pending == 3
    listed = await runs.ListRuns(rpb.ListRunsRequest())
    assert [r.uuid for r in listed.runs] == [parent.uuid]  # children are not listed by default
    kids = (await runs.ListRuns(rpb.ListRunsRequest(parent=parent.uuid))).runs
    assert sorted(k.array_index for k in kids) == [0, 1, 2]
    assert {k.parent_run for k in kids} == {parent.uuid}
    leased = await lease(workers, max_runs=10, wait=1)
    assert sorted(x.run for x in leased) == sorted(k.uuid for k in kids)  # never the parent
    envs = sorted(
        (x.config.env["BATCHYARD_ARRAY_INDEX"], x.config.env["BATCHYARD_ARRAY_SIZE"])
        for x in leased
    )
    assert envs == [("0", "3"), ("1", "3"), ("2", "3")]
    assert (await get(runs, parent.uuid)).status == RUNNING
    await complete(workers, leased[0], progress=100)
    mid = await get(runs, parent.uuid)
    assert mid.status == RUNNING and mid.array_summary.succeeded == 1
    assert mid.array_summary.running == 2 and mid.progress == 33
    for x in leased[1:]:
        await complete(workers, x)
    done = await get(runs, parent.uuid)
    assert done.status == SUCCEEDED and done.progress == 100 and done.end_time.seconds


async def test_array_fails_when_a_child_fails_after_its_retries(definitions, runs, workers):
    await define(definitions, retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s"})
    parent = await submit(runs, array_size=2)
    leased = await lease(workers, max_runs=10, wait=1)
    await complete(workers, leased[0])
    await complete(workers, leased[1], status=FAILED, **fail_fields())
    assert (await get(runs, parent.uuid)).status == RUNNING  # the child retries
    await run_one(workers, status=FAILED, **fail_fields())
    got = await get(runs, parent.uuid)
    assert got.status == FAILED and got.reason == run_pb2.RUN_REASON_ARRAY_CHILD_FAILED
    assert got.array_summary.failed == 1 and got.array_summary.succeeded == 1
    child = await get(runs, leased[1].run)
    assert child.num_retries_used == 1 and len(child.attempts) == 2


async def test_cancelling_an_array_cancels_its_unfinished_children(definitions, runs, workers):
    await define(definitions)
    parent = await submit(runs, array_size=3)
    [running] = await lease(workers, max_runs=1, wait=1)
    after = await submit(runs, depends_on=[{"run": parent.uuid}])
    await runs.CancelRun(rpb.CancelRunRequest(run=parent.uuid))
    got = await get(runs, parent.uuid)
    assert got.status == CANCELLED and got.array_summary.cancelled == 2
    assert (await get(runs, running.run)).cancel_requested
    assert (await get(runs, after.uuid)).reason == DEP_FAILED
    await expect(
        runs.DeleteRun(rpb.DeleteRunRequest(run=parent.uuid)), grpc.StatusCode.FAILED_PRECONDITION
    )
    await complete(workers, running, status=CANCELLED, reason=run_pb2.RUN_REASON_CANCELLED_BY_USER)
    await runs.DeleteRun(rpb.DeleteRunRequest(run=parent.uuid))
    await expect(runs.GetRun(rpb.GetRunRequest(run=running.run)), grpc.StatusCode.NOT_FOUND)
    listed = await runs.ListRuns(rpb.ListRunsRequest(include_children=True))
    assert [r.uuid for r in listed.runs] == [after.uuid]


async def test_per_child_payloads(definitions, runs, workers):
    await define(definitions)
    await submit(runs, array_size=2, payloads=["YQ==", "YmI="])
    leased = await lease(workers, max_runs=10, wait=1)
    by_index = {x.config.env["BATCHYARD_ARRAY_INDEX"]: x.payload for x in leased}
    assert by_index == {"0": b"a", "1": b"bb"}
    got = await expect(
        runs.SubmitRun(request(array_size=2, payloads=["YQ=="])), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "payloads" in got.fields


async def test_n_to_n_and_sequential(definitions, runs, workers):
    await define(definitions)
    first, second = await batch(
        runs,
        {"arraySize": 2},
        {"arraySize": 2, "dependsOn": [{"batchIndex": 0, "type": "DEPENDENCY_TYPE_N_TO_N"}]},
    )
    kids1 = {
        k.array_index: k.uuid
        for k in (await runs.ListRuns(rpb.ListRunsRequest(parent=first.uuid))).runs
    }
    kids2 = {
        k.array_index: k.uuid
        for k in (await runs.ListRuns(rpb.ListRunsRequest(parent=second.uuid))).runs
    }
    leased = {x.run: x for x in await lease(workers, max_runs=10, wait=1)}
    assert set(leased) == set(kids1.values())
    await complete(workers, leased[kids1[1]])
    assert await leasable_and_done(workers) == [kids2[1]]  # child 1 waited only for child 1
    await complete(workers, leased[kids1[0]])
    assert await leasable_and_done(workers) == [kids2[0]]
    seq = await submit(runs, array_size=3, depends_on=[{"type": "DEPENDENCY_TYPE_SEQUENTIAL"}])
    order = [await leasable_and_done(workers) for _ in range(3)]
    kids = {
        k.uuid: k.array_index
        for k in (await runs.ListRuns(rpb.ListRunsRequest(parent=seq.uuid))).runs
    }
    assert [[kids[r] for r in step] for step in order] == [[0], [1], [2]]
    assert (await get(runs, seq.uuid)).status == SUCCEEDED
    mismatch = await expect(
        submit(
            runs, array_size=3, depends_on=[{"run": first.uuid, "type": "DEPENDENCY_TYPE_N_TO_N"}]
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "depends_on[0]" in mismatch.fields


async def test_status_filter_sees_waiting_runs_as_pending(definitions, runs, workers):
    await define(definitions)
    a = await submit(runs)
    b = await submit(runs, depends_on=[{"run": a.uuid}])
    pending = await runs.ListRuns(rpb.ListRunsRequest(statuses=[PENDING]))
    assert {r.uuid for r in pending.runs} == {a.uuid, b.uuid}
    cancelled = await runs.CancelRun(rpb.CancelRunRequest(run=b.uuid))
    assert cancelled.run.status == CANCELLED


async def test_the_sweeper_settles_what_a_crash_between_end_and_release_left(
    definitions, runs, server
):
    import asyncpg

    from batchyard.server.maintenance.pipeline_sweeper import PipelineSweeper

    await define(definitions)
    a = await submit(runs)
    b = await submit(runs, depends_on=[{"run": a.uuid}])
    parent = await submit(runs, array_size=2)
    pool = await asyncpg.create_pool(server.dsn, min_size=1, max_size=2)
    try:  # ends written as a crashed server would have left them: without their settling
        await pool.execute(
            "UPDATE runs SET status = 'SUCCEEDED', reason = '', ended_at = now()"
            " WHERE id = $1 OR parent_id = $2",
            uuid.UUID(a.uuid),
            uuid.UUID(parent.uuid),
        )
        assert (await get(runs, b.uuid)).reason == WAITING
        assert await PipelineSweeper(pool).run_once() == 2
        assert await PipelineSweeper(pool).run_once() == 0
    finally:
        await pool.close()
    assert (await get(runs, b.uuid)).reason == run_pb2.RUN_REASON_IN_QUEUE
    assert (await get(runs, parent.uuid)).status == SUCCEEDED
