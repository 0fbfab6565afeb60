"""QueueService and what queues do to runs: refused unknown queues, priority across
queues, pause/resume, concurrency limits, and the reason a pending run waits."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2

from batchyard.v1 import definition_pb2, queue_pb2, run_pb2
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import queue_service_pb2 as qpb
from batchyard.v1 import run_service_pb2 as rpb
from tests import pg
from tests.rpc import failure
from tests.server.helpers import (
    complete,
    define,
    fail_fields,
    get,
    lease,
    make_queue,
    shell_config,
    submit,
)

NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def refused(call, code=grpc.StatusCode.INVALID_ARGUMENT):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    got = failure(info.value)
    assert got.code == code, got
    return got


async def update(queues, name: str, **fields):
    changes = queue_pb2.Queue(**fields)
    mask = field_mask_pb2.FieldMask(paths=list(fields))
    reply = await queues.UpdateQueue(
        qpb.UpdateQueueRequest(queue=name, changes=changes, update_mask=mask)
    )
    return reply.queue


async def pause(queues, name: str):
    return await update(queues, name, state=queue_pb2.QUEUE_STATE_PAUSED)


async def resume(queues, name: str):
    return await update(queues, name, state=queue_pb2.QUEUE_STATE_ENABLED)


async def get_queue(queues, name: str):
    return (await queues.GetQueue(qpb.GetQueueRequest(queue=name))).queue


# ---------------------------------------------------------------- the service


async def test_default_queue_exists_and_queues_are_created_listed_and_paged(queues):
    default = await get_queue(queues, "default")
    assert default.state == queue_pb2.QUEUE_STATE_ENABLED and default.workspace == "default"
    made = await make_queue(
        queues, "gpu", description="the big boxes", priority=10, concurrencyLimit=4
    )
    assert (made.priority, made.concurrency_limit, made.description) == (10, 4, "the big boxes")
    assert made.state == queue_pb2.QUEUE_STATE_ENABLED and made.HasField("create_time")
    for name in ("a", "b", "c"):
        await make_queue(queues, name)
    names, token = [], ""
    while True:
        page = await queues.ListQueues(qpb.ListQueuesRequest(page_size=2, page_token=token))
        names += [x.name for x in page.queues]
        token = page.next_page_token
        if not token:
            break
    assert names == ["a", "b", "c", "default", "gpu"]
    got = await refused(make_queue(queues, "gpu"), grpc.StatusCode.ALREADY_EXISTS)
    assert got.reason == "QUEUE_EXISTS"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "queue.name"),
        ({"name": "no spaces"}, "queue.name"),
        ({"name": "ok", "priority": 5000}, "queue.priority"),
        ({"name": "ok", "concurrencyLimit": -1}, "queue.concurrency_limit"),
        ({"name": "ok", "concurrencyLimit": 1_000_000}, "queue.concurrency_limit"),
        ({"name": "ok", "description": "x" * 1001}, "queue.description"),
    ],
)
async def test_bad_queues_are_refused_naming_the_field(queues, fields, field):
    name = fields.pop("name")
    got = await refused(make_queue(queues, name, **fields))
    assert field in got.fields, got
    listed = await queues.ListQueues(qpb.ListQueuesRequest())
    assert [x.name for x in listed.queues] == ["default"]


async def test_update_changes_only_the_masked_fields(queues):
    await make_queue(queues, "q", description="first", priority=3)
    after = await update(queues, "q", concurrency_limit=2)
    assert (after.description, after.priority, after.concurrency_limit) == ("first", 3, 2)
    after = await update(queues, "q", concurrency_limit=0)  # 0: no limit again
    assert after.concurrency_limit == 0
    got = await refused(
        queues.UpdateQueue(
            qpb.UpdateQueueRequest(
                queue="q",
                changes=queue_pb2.Queue(name="renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["name"]),
            )
        )
    )
    assert "update_mask" in got.fields
    got = await refused(update(queues, "q", priority=99999))
    assert "changes.priority" in got.fields
    got = await refused(update(queues, "missing", priority=1), NOT_FOUND)
    assert got.reason == "QUEUE_NOT_FOUND"


async def test_delete_refuses_default_unfinished_runs_and_named_by_definitions(
    queues, definitions, runs, workers
):
    delete = queues.DeleteQueue
    got = await refused(
        delete(qpb.DeleteQueueRequest(queue="default")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert got.reason == "WRONG_STATE"
    await make_queue(queues, "busy")
    await define(definitions, "job")
    run = await submit(runs, "job", overrides={"queue": "busy"})
    got = await refused(
        delete(qpb.DeleteQueueRequest(queue="busy")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "1 unfinished" in got.message
    (leased,) = await lease(workers, queues=["busy"], wait=0)
    await refused(delete(qpb.DeleteQueueRequest(queue="busy")), grpc.StatusCode.FAILED_PRECONDITION)
    await complete(workers, leased)
    await delete(qpb.DeleteQueueRequest(queue="busy"))  # only finished runs are left
    assert (await get(runs, run.uuid)).status == run_pb2.RUN_STATUS_SUCCEEDED
    await refused(get_queue(queues, "busy"), NOT_FOUND)

    await make_queue(queues, "named")
    await define(definitions, "uses-named", queue="named")
    got = await refused(
        delete(qpb.DeleteQueueRequest(queue="named")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "definitions" in got.message
    await refused(delete(qpb.DeleteQueueRequest(queue="nope")), NOT_FOUND)


async def test_stats_count_pending_running_and_the_oldest_wait(queues, definitions, runs, workers):
    await make_queue(queues, "s", concurrencyLimit=5)
    await define(definitions, "job", queue="s")
    for _ in range(3):
        await submit(runs, "job")
    await lease(workers, queues=["s"], wait=0)
    await pause(queues, "s")
    stats = (await get_queue(queues, "s")).stats
    assert (stats.pending, stats.running, stats.paused, stats.concurrency_limit) == (2, 1, True, 5)
    assert stats.HasField("oldest_pending_age")
    empty = (await get_queue(queues, "default")).stats
    assert (empty.pending, empty.running) == (0, 0) and not empty.HasField("oldest_pending_age")


# ---------------------------------------------------------------- unknown queues


async def test_unknown_queues_are_refused_naming_each_field(queues, definitions, runs):
    await define(definitions, "job")
    missing = {"queue": "nowhere"}
    cases = [
        (
            runs.SubmitRun(
                rpb.SubmitRunRequest(
                    definition="job", overrides=run_pb2.RunOverrides(queue="nowhere")
                )
            ),
            "overrides.queue",
        ),
        (runs.SubmitRun(rpb.SubmitRunRequest(config=shell_config(**missing))), "config.queue"),
        (
            runs.BatchSubmitRuns(
                rpb.BatchSubmitRunsRequest(
                    requests=[
                        rpb.SubmitRunRequest(definition="job"),
                        rpb.SubmitRunRequest(
                            definition="job", overrides=run_pb2.RunOverrides(queue="nowhere")
                        ),
                    ]
                )
            ),
            "requests[1].overrides.queue",
        ),
        (define(definitions, "elsewhere", **missing), "definition.config.queue"),
        (
            definitions.UpdateDefinition(
                dpb.UpdateDefinitionRequest(
                    definition="job",
                    changes=definition_pb2.Definition(config=shell_config(**missing)),
                    update_mask=field_mask_pb2.FieldMask(paths=["config.queue"]),
                )
            ),
            "changes.config.queue",
        ),
    ]
    for call, field in cases:
        got = await refused(call, NOT_FOUND)
        assert got.reason == "QUEUE_NOT_FOUND" and field in got.fields, (field, got)
        assert "nowhere" in got.message
    listed = await runs.ListRuns(rpb.ListRunsRequest())
    assert list(listed.runs) == []  # nothing half-written: the good entry of the batch too


async def test_a_queue_deleted_after_the_check_still_refuses_the_run(queues, definitions, runs):
    """The server knows 'gone' existed a moment ago; the database has the last word."""
    await make_queue(queues, "gone")
    await define(definitions, "job")
    await submit(runs, "job", overrides={"queue": "gone"})  # the server now knows it exists
    listed = await runs.ListRuns(rpb.ListRunsRequest())
    await runs.CancelRun(rpb.CancelRunRequest(run=listed.runs[0].uuid))
    await queues.DeleteQueue(qpb.DeleteQueueRequest(queue="gone"))
    got = await refused(submit(runs, "job", overrides={"queue": "gone"}), NOT_FOUND)
    assert got.reason == "QUEUE_NOT_FOUND" and "overrides.queue" in got.fields


async def test_a_worker_may_serve_queues_that_do_not_exist_yet(queues, definitions, runs, workers):
    await define(definitions, "job")
    waiting = asyncio.create_task(lease(workers, queues=["later", "default"], wait=5))
    await asyncio.sleep(0.2)
    await make_queue(queues, "later")
    run = await submit(runs, "job", overrides={"queue": "later"})
    assert [x.run for x in await waiting] == [run.uuid]


# ---------------------------------------------------------------- leasing


async def test_a_worker_leases_from_the_higher_priority_queue_first(
    queues, definitions, runs, workers
):
    await make_queue(queues, "urgent", priority=10)
    await make_queue(queues, "nightly", priority=-1)
    await define(definitions, "job")
    nightly = [
        await submit(runs, "job", overrides={"queue": "nightly", "priority": 100}) for _ in range(2)
    ]
    usual = [await submit(runs, "job") for _ in range(2)]
    urgent_low = await submit(runs, "job", overrides={"queue": "urgent", "priority": -5})
    urgent_high = await submit(runs, "job", overrides={"queue": "urgent", "priority": 5})
    both = ["nightly", "default", "urgent"]
    first = await lease(workers, max_runs=3, queues=both, wait=0)
    assert [x.run for x in first] == [urgent_high.uuid, urgent_low.uuid, usual[0].uuid]
    rest = await lease(workers, max_runs=10, queues=both, wait=0)
    assert [x.run for x in rest] == [usual[1].uuid, nightly[0].uuid, nightly[1].uuid]


async def test_pause_holds_submissions_and_resume_releases_them_at_once(
    queues, definitions, runs, workers
):
    await make_queue(queues, "p")
    await define(definitions, "job", queue="p")
    running = await submit(runs, "job")
    (leased,) = await lease(workers, queues=["p"], wait=0)
    await pause(queues, "p")
    held = [await submit(runs, "job") for _ in range(3)]  # accepted while paused
    assert await lease(workers, max_runs=10, queues=["p"], wait=0) == []
    # the attempt that was running goes on: its worker still completes it
    await complete(workers, leased)
    assert (await get(runs, running.uuid)).status == run_pb2.RUN_STATUS_SUCCEEDED
    poll = asyncio.create_task(lease(workers, max_runs=10, queues=["p"], wait=20))
    await asyncio.sleep(0.3)
    assert not poll.done()
    loop = asyncio.get_running_loop()
    resumed_at = loop.time()
    await resume(queues, "p")
    got = await poll
    assert sorted(x.run for x in got) == sorted(r.uuid for r in held)
    assert loop.time() - resumed_at < 5  # woken by the resume, not by the 20 s wait


async def test_concurrency_limit_caps_leases_and_an_end_makes_room(
    queues, definitions, runs, workers
):
    await make_queue(queues, "lim", concurrencyLimit=2)
    await define(definitions, "job", queue="lim")
    for _ in range(5):
        await submit(runs, "job")
    got = await lease(workers, max_runs=10, queues=["lim"], wait=0)
    assert len(got) == 2
    assert await lease(workers, max_runs=10, queues=["lim"], wait=0, worker_id="w2") == []
    await complete(workers, got[0])
    again = await lease(workers, max_runs=10, queues=["lim", "default"], wait=0, worker_id="w2")
    assert len(again) == 1
    await update(queues, "lim", concurrency_limit=0)  # the limit lifted: the rest go
    await asyncio.sleep(2.1)  # what a server read about limits is trusted for 2 s
    rest = await lease(workers, max_runs=10, queues=["lim"], wait=0)
    assert len(rest) == 2


# ---------------------------------------------------------------- why a run waits


async def test_every_waiting_cause_is_shown_and_replaced_as_it_changes(
    queues, definitions, runs, workers
):
    await make_queue(queues, "w", concurrencyLimit=1)
    await define(
        definitions, "job", queue="w", retryStrategy={"numRetries": 1, "delayBetweenRetries": "1s"}
    )
    first = await submit(runs, "job")
    second = await submit(runs, "job")
    run = await get(runs, second.uuid)
    assert run.reason == run_pb2.RUN_REASON_RECENTLY_SUBMITTED
    assert run.queue_position == 1 and "in queue 'w', 1 run ahead" in run.message

    (leased,) = await lease(workers, queues=["w"], wait=0)
    run = await get(runs, second.uuid)
    assert run.reason == run_pb2.RUN_REASON_QUEUE_AT_LIMIT, run
    assert "1 of 1 running" in run.message and not run.HasField("queue_position")

    await pause(queues, "w")  # paused outranks the limit
    run = await get(runs, second.uuid)
    assert run.reason == run_pb2.RUN_REASON_QUEUE_PAUSED and "'w' is paused" in run.message
    listed = await runs.ListRuns(rpb.ListRunsRequest(statuses=[run_pb2.RUN_STATUS_PENDING]))
    assert [r.reason for r in listed.runs] == [run_pb2.RUN_REASON_QUEUE_PAUSED]

    await complete(workers, leased, status=run_pb2.RUN_STATUS_FAILED, **fail_fields())
    retrying = await get(runs, first.uuid)  # waiting for retry outranks the paused queue
    assert retrying.reason == run_pb2.RUN_REASON_WAITING_FOR_RETRY
    await asyncio.sleep(1.2)
    assert (await get(runs, first.uuid)).reason == run_pb2.RUN_REASON_QUEUE_PAUSED

    await resume(queues, "w")
    run = await get(runs, second.uuid)
    assert (
        run.reason == run_pb2.RUN_REASON_IN_QUEUE
        or run.reason == run_pb2.RUN_REASON_RECENTLY_SUBMITTED
    )
    assert run.queue_position == 1  # the retry of `first` goes before it (older)


async def test_watch_run_sends_each_change_of_cause(queues, definitions, runs, workers):
    await make_queue(queues, "watched", concurrencyLimit=1)
    await define(definitions, "job", queue="watched")
    blocker = await submit(runs, "job")
    watched = await submit(runs, "job")
    seen: list[int] = []
    changed = asyncio.Event()

    async def watch():
        async for event in runs.WatchRun(rpb.WatchRunRequest(run=watched.uuid)):
            seen.append(event.run.reason)
            changed.set()

    task = asyncio.create_task(watch())

    async def next_reason(expected):
        while not seen or seen[-1] != expected:
            changed.clear()
            await asyncio.wait_for(changed.wait(), 10)

    await next_reason(run_pb2.RUN_REASON_RECENTLY_SUBMITTED)
    (leased,) = await lease(workers, queues=["watched"], wait=0)
    assert leased.run == blocker.uuid
    await next_reason(run_pb2.RUN_REASON_QUEUE_AT_LIMIT)
    await pause(queues, "watched")
    await next_reason(run_pb2.RUN_REASON_QUEUE_PAUSED)
    await resume(queues, "watched")
    await next_reason(run_pb2.RUN_REASON_QUEUE_AT_LIMIT)
    await complete(workers, leased)
    await next_reason(run_pb2.RUN_REASON_RECENTLY_SUBMITTED)
    (mine,) = await lease(workers, queues=["watched"], wait=5)
    await next_reason(run_pb2.RUN_REASON_UNSPECIFIED)  # running
    await complete(workers, mine)
    await asyncio.wait_for(task, 10)


# ---------------------------------------------------------------- migration


async def test_migration_makes_a_queue_of_every_name_runs_and_definitions_use(pg_admin_dsn):
    from batchyard.server.app import run_migrations
    from batchyard.server.db.migrate import load_migrations
    from tests.server.test_migrations import DEFAULT_WS, apply_up_to

    name = await pg.create_database(pg_admin_dsn)
    dsn = pg.dsn_for(pg_admin_dsn, name)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            last = next(m.version for m in load_migrations() if m.name == "queues") - 1
            await apply_up_to(conn, last)
            await conn.execute(
                "INSERT INTO runs (id, workspace_id, queue, priority, status, reason)"
                " VALUES ($1, $2, 'legacy', 0, 'PENDING', 'RECENTLY_SUBMITTED')",
                uuid.uuid4(),
                DEFAULT_WS,
            )
        finally:
            await conn.close()
        await run_migrations(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            names = await conn.fetch("SELECT name FROM queues ORDER BY name")
            assert [r["name"] for r in names] == ["default", "legacy"]
            await conn.execute(
                "INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'new')"
            )
            count = await conn.fetchval(
                "SELECT count(*) FROM queues q JOIN workspaces w ON w.id = q.workspace_id"
                " WHERE w.name = 'new' AND q.name = 'default'"
            )
            assert count == 1
        finally:
            await conn.close()
    finally:
        await pg.drop_database(pg_admin_dsn, name)
