"""RunService against a real server and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_pb2
from batchyard.v1 import run_service_pb2 as rpb
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

SECRET = "canary-run-secret-4471"


async def expect(call, code):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    got = failure(info.value)
    assert got.code == code, got
    return got


async def test_submit_pins_the_definition_version_and_applies_overrides(definitions, runs, queues):
    await make_queue(queues, "fast")
    created = await define(definitions, args=["a"], env={"A": "1", "B": "2"}, priority=3)
    run = await submit(
        runs,
        "job",
        overrides={"args": ["x", "y"], "env": {"B": "override"}, "timeout": "15s", "queue": "fast"},
        payload="aGVsbG8=",
    )
    assert run.status == run_pb2.RUN_STATUS_PENDING
    assert run.reason == run_pb2.RUN_REASON_RECENTLY_SUBMITTED
    assert run.definition_uuid == created.uuid and run.definition_version == 1
    assert list(run.config.args) == ["x", "y"]
    assert dict(run.config.env) == {"A": "1", "B": "override"}
    assert (
        run.config.timeout.seconds == 15 and run.config.queue == "fast" and run.config.priority == 3
    )
    assert run.payload_size == 5
    # A later update does not change the run: it pinned version 1.
    await definitions.UpdateDefinition(
        dpb.UpdateDefinitionRequest(
            definition="job",
            changes=dpb.CreateDefinitionRequest().definition.__class__(
                config=shell_config(args=["new"])
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["config.args"]),
        )
    )
    again = await get(runs, run.uuid)
    assert again.definition_version == 1 and list(again.config.args) == ["x", "y"]
    by_uuid = await submit(runs, created.uuid)
    assert by_uuid.definition_version == 2 and list(by_uuid.config.args) == ["new"]


async def test_submit_an_inline_configuration(runs):
    request = rpb.SubmitRunRequest(config=shell_config("echo", args=["hi"]))
    run = (await runs.SubmitRun(request)).run
    assert run.definition_uuid == "" and run.definition_version == 0
    assert run.config.source_location == "echo"


async def test_secrets_are_not_returned(definitions, runs):
    await define(definitions, secretEnv={"TOKEN": SECRET})
    run = await submit(runs, "job", overrides={"secretEnv": {"OTHER": SECRET}})
    fetched = await get(runs, run.uuid)
    for message in (run, fetched):
        assert SECRET.encode() not in message.SerializeToString()
        assert sorted(message.config.secret_env_names) == ["OTHER", "TOKEN"]


async def test_bad_submissions_write_nothing(definitions, runs):
    await define(definitions)
    cases: list[tuple[dict, str | None]] = [
        ({"definition": "job", "payload": ""}, None),
        ({"definition": "job", "overrides": {"timeout": "-1s"}}, "overrides.timeout"),
        (
            {"definition": "job", "overrides": {"retryStrategy": {"numRetries": -2}}},
            "overrides.retry_strategy.num_retries",
        ),
        ({"definition": "job", "overrides": {"queue": "bad queue"}}, "overrides.queue"),
        (
            {"definition": "job", "overrides": {"env": {"BATCHYARD_X": "1"}}},
            "overrides.env.BATCHYARD_X",
        ),
        ({"definition": "job", "requestId": "x" * 201}, "request_id"),
        ({}, "definition"),
        ({"config": {"type": "JOB_TYPE_PYTHON"}}, "config.source"),
    ]
    for fields, path in cases:
        if path is None:
            request = rpb.SubmitRunRequest(definition="job", payload=b"x" * (1024 * 1024 + 1))
            path = "payload"
        else:
            from google.protobuf import json_format

            request = json_format.ParseDict(fields, rpb.SubmitRunRequest())
        got = await expect(runs.SubmitRun(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert path in got.fields, (path, got.fields)
    got = await expect(
        runs.SubmitRun(rpb.SubmitRunRequest(definition="missing")), grpc.StatusCode.NOT_FOUND
    )
    assert got.reason == "DEFINITION_NOT_FOUND"
    assert list((await runs.ListRuns(rpb.ListRunsRequest())).runs) == []


async def test_payload_of_exactly_one_mebibyte_is_accepted(definitions, runs):
    await define(definitions)
    request = rpb.SubmitRunRequest(definition="job", payload=b"x" * (1024 * 1024))
    assert (await runs.SubmitRun(request)).run.payload_size == 1024 * 1024


async def test_request_id_is_idempotent_even_concurrently(definitions, runs):
    await define(definitions)
    request = rpb.SubmitRunRequest(definition="job", request_id="nightly-2026-11-21")
    replies = await asyncio.gather(*(runs.SubmitRun(request) for _ in range(20)))
    assert len({r.run.uuid for r in replies}) == 1
    assert sum(not r.deduplicated for r in replies) == 1
    assert replies[0].run.request_id == "nightly-2026-11-21"
    listed = await runs.ListRuns(rpb.ListRunsRequest())
    assert len(listed.runs) == 1


async def test_batch_submit(definitions, runs):
    await define(definitions)
    requests = [
        rpb.SubmitRunRequest(definition="job", overrides=run_pb2.RunOverrides(args=[str(i)]))
        for i in range(50)
    ]
    requests.append(rpb.SubmitRunRequest(definition="job", request_id="once"))
    requests.append(rpb.SubmitRunRequest(definition="job", request_id="once"))
    reply = await runs.BatchSubmitRuns(rpb.BatchSubmitRunsRequest(requests=requests))
    assert [list(r.run.config.args) for r in reply.responses[:50]] == [[str(i)] for i in range(50)]
    assert reply.responses[50].run.uuid == reply.responses[51].run.uuid
    assert reply.responses[51].deduplicated
    assert len({r.run.uuid for r in reply.responses}) == 51
    # What the batch answered is what the server stored, run by run.
    # (A read also says where a pending run is in its queue; the submit answer does not.)
    for item in (reply.responses[0], reply.responses[17], reply.responses[50]):
        stored = await get(runs, item.run.uuid)
        assert stored.message.startswith("in queue 'default'") and stored.HasField("queue_position")
        stored.ClearField("message")
        stored.ClearField("queue_position")
        assert item.run == stored
    listed = await runs.ListRuns(rpb.ListRunsRequest(page_size=1000))
    assert len(listed.runs) == 51


async def test_batch_submit_is_all_or_nothing(definitions, runs):
    await define(definitions)
    bad = rpb.SubmitRunRequest(definition="job", overrides=run_pb2.RunOverrides(queue="no way"))
    requests = [rpb.SubmitRunRequest(definition="job"), bad]
    got = await expect(
        runs.BatchSubmitRuns(rpb.BatchSubmitRunsRequest(requests=requests)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "requests[1].overrides.queue" in got.fields
    await expect(
        runs.BatchSubmitRuns(rpb.BatchSubmitRunsRequest()), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert list((await runs.ListRuns(rpb.ListRunsRequest())).runs) == []


async def test_get_unknown_and_malformed(runs):
    got = await expect(
        runs.GetRun(rpb.GetRunRequest(run="6f748a1b-251c-48b5-935a-a1974c3dbf7b")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert got.reason == "RUN_NOT_FOUND"
    got = await expect(
        runs.GetRun(rpb.GetRunRequest(run="not-a-uuid")), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "run" in got.fields


async def test_list_newest_first_with_filters_and_pages(definitions, runs, workers):
    await define(definitions, "a")
    await define(definitions, "b")
    made = [await submit(runs, "a" if i % 2 else "b") for i in range(9)]
    seen, token = [], ""
    while True:
        page = await runs.ListRuns(rpb.ListRunsRequest(page_size=4, page_token=token))
        seen += [r.uuid for r in page.runs]
        token = page.next_page_token
        if not token:
            break
    assert seen == [r.uuid for r in reversed(made)]
    only_a = await runs.ListRuns(rpb.ListRunsRequest(definition="a"))
    assert {r.uuid for r in only_a.runs} == {r.uuid for r in made if r.definition_name == "a"}
    leased = await lease(workers)
    await complete(workers, leased[0])
    done = await runs.ListRuns(rpb.ListRunsRequest(statuses=[run_pb2.RUN_STATUS_SUCCEEDED]))
    assert [r.uuid for r in done.runs] == [leased[0].run]
    middle = made[4].submit_time.ToDatetime(tzinfo=dt.UTC)
    start = timestamp_pb2.Timestamp()
    start.FromDatetime(middle)
    recent = await runs.ListRuns(rpb.ListRunsRequest(submit_time_from=start))
    assert {r.uuid for r in recent.runs} == {r.uuid for r in made[4:]}
    bad_status = rpb.ListRunsRequest(statuses=[77])  # type: ignore[list-item]
    await expect(runs.ListRuns(bad_status), grpc.StatusCode.INVALID_ARGUMENT)


async def test_cancel_pending_running_and_finished(definitions, runs, workers):
    await define(definitions)
    pending = await submit(runs, "job")
    cancelled = (
        await runs.CancelRun(rpb.CancelRunRequest(run=pending.uuid, reason="not needed"))
    ).run
    assert cancelled.status == run_pb2.RUN_STATUS_CANCELLED
    assert cancelled.reason == run_pb2.RUN_REASON_CANCELLED_BY_USER
    assert "not needed" in cancelled.message and cancelled.HasField("end_time")
    assert await lease(workers, wait=0) == [], "a cancelled run is never leased"

    running = await submit(runs, "job")
    (leased,) = await lease(workers)
    asked = (await runs.CancelRun(rpb.CancelRunRequest(run=running.uuid, reason="wrong day"))).run
    assert asked.status == run_pb2.RUN_STATUS_RUNNING and asked.cancel_requested
    again = (await runs.CancelRun(rpb.CancelRunRequest(run=running.uuid))).run
    assert again.cancel_requested
    await complete(workers, leased, run_pb2.RUN_STATUS_CANCELLED, message="stopped by SIGTERM")
    final = await get(runs, running.uuid)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED
    assert "wrong day" in final.message, "the user's reason survives the worker's report"
    assert final.attempts[0].message == "stopped by SIGTERM"
    assert final.attempts[0].status == run_pb2.RUN_STATUS_CANCELLED

    got = await expect(
        runs.CancelRun(rpb.CancelRunRequest(run=running.uuid)), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert got.reason == "WRONG_STATE"
    await expect(
        runs.CancelRun(rpb.CancelRunRequest(run="6f748a1b-251c-48b5-935a-a1974c3dbf7b")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_a_failing_job_cancelled_meanwhile_is_not_retried(definitions, runs, workers):
    await define(definitions, retryStrategy={"numRetries": 3, "delayBetweenRetries": "0s"})
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    await complete(workers, leased, run_pb2.RUN_STATUS_FAILED, **fail_fields(3))
    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED and final.num_retries_used == 0


async def test_delete_only_finished_runs(definitions, runs, workers, database_url):
    await define(definitions)
    run = await submit(runs, "job")
    got = await expect(
        runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid)), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert got.reason == "WRONG_STATE"
    (leased,) = await lease(workers)
    await expect(
        runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid)), grpc.StatusCode.FAILED_PRECONDITION
    )
    await complete(workers, leased)
    await runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid))
    await expect(runs.GetRun(rpb.GetRunRequest(run=run.uuid)), grpc.StatusCode.NOT_FOUND)
    conn = await asyncpg.connect(database_url)
    try:
        for table in ("run_specs", "run_attempts"):
            left = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE run_id = $1", uuid.UUID(run.uuid)
            )
            assert left == 0, f"{table} keeps rows of a deleted run"
    finally:
        await conn.close()
    await expect(runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid)), grpc.StatusCode.NOT_FOUND)
