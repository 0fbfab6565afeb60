"""RunsClient (the SDK) against the real server: submit, iter, wait.

RunsClient is synchronous; its calls run in a thread while the test's event loop serves
and, where a run has to move along, acts as the worker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from batchyard.client import connection
from batchyard.client.core.requests import submit_request
from batchyard.client.core.views import is_finished
from batchyard.client.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    WaitTimeoutError,
)
from batchyard.client.sync.runs import RunsClient
from batchyard.v1 import job_pb2, run_pb2
from tests.client.acting import ActingWorker, create_definition
from tests.server.helpers import make_queue

ECHO = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="echo")


@pytest.fixture
def client(target):
    with connection.channel(target, timeout=10) as ch:
        yield RunsClient(ch, timeout=10)


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


async def call(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


def test_submit_request_needs_exactly_one_of_definition_and_config():
    with pytest.raises(ValueError, match="either"):
        submit_request()
    with pytest.raises(ValueError, match="either"):
        submit_request("hello", config=ECHO)


def test_retries_replace_the_strategy_with_nothing_else_set():
    request = submit_request("hello", retries=3, timeout=1.5, priority=0)
    overrides = request.overrides
    assert overrides.retry_strategy == job_pb2.RetryStrategy(num_retries=3)
    assert overrides.HasField("retry_strategy")
    assert (overrides.timeout.seconds, overrides.timeout.nanos) == (1, 500_000_000)
    assert overrides.HasField("priority")
    assert overrides.priority == 0
    plain = submit_request("hello")
    assert not plain.overrides.HasField("retry_strategy")
    assert not plain.overrides.HasField("timeout")
    assert not plain.overrides.HasField("priority")


async def test_submit_ad_hoc_and_by_definition(client, definitions, queues):
    await make_queue(queues, "q")
    await create_definition(definitions, "hello")
    ad_hoc = await call(client.submit, config=ECHO, args=["x"], request_id="once")
    assert ad_hoc.run.definition_uuid == ""
    assert list(ad_hoc.run.config.args) == ["x"]
    again = await call(client.submit, config=ECHO, request_id="once")
    assert (again.run.uuid, again.deduplicated) == (ad_hoc.run.uuid, True)

    pinned = await call(client.submit, "hello", env={"A": "1"}, queue="q", priority=7)
    assert (pinned.run.definition_name, pinned.run.definition_version) == ("hello", 1)
    assert (pinned.run.config.queue, pinned.run.config.priority) == ("q", 7)
    assert dict(pinned.run.config.env) == {"A": "1"}

    with pytest.raises(NotFoundError):
        await call(client.submit, "nope")
    with pytest.raises(InvalidArgumentError) as raised:
        await call(client.submit, "hello", timeout=-1)
    assert [field for field, _ in raised.value.field_violations] == ["overrides.timeout"]


async def test_submit_many_is_all_or_nothing(client, definitions):
    await create_definition(definitions, "hello")
    good = [submit_request("hello", args=[str(i)]) for i in range(3)]
    responses = await call(client.submit_many, good)
    assert [list(r.run.config.args) for r in responses] == [["0"], ["1"], ["2"]]

    bad = [submit_request("hello"), submit_request("hello", priority=5000)]
    with pytest.raises(InvalidArgumentError) as raised:
        await call(client.submit_many, bad)
    assert [field for field, _ in raised.value.field_violations] == [
        "requests[1].overrides.priority"
    ]
    assert len(list(await call(lambda: list(client.iter())))) == 3


async def test_iter_follows_pages_with_filters(client, definitions, worker):
    await create_definition(definitions, "hello")
    await create_definition(definitions, "other")
    ids = []
    for name in ["hello", "other", "hello", "hello", "other"]:
        ids.append((await call(client.submit, name)).run.uuid)
    await worker.succeed(await worker.lease())  # the oldest: ids[0]
    newest_first = ids[::-1]

    async def listed(**filters):
        return [run.uuid for run in await call(lambda: list(client.iter(**filters)))]

    assert await listed() == newest_first
    assert await listed(page_size=2) == newest_first
    assert await listed(limit=3, page_size=2) == newest_first[:3]
    assert await listed(limit=1) == newest_first[:1]
    assert await listed(definition="other") == [ids[4], ids[1]]
    assert await listed(statuses=[run_pb2.RUN_STATUS_SUCCEEDED]) == [ids[0]]
    assert await listed(definition="hello", statuses=[run_pb2.RUN_STATUS_PENDING], page_size=1) == [
        ids[3],
        ids[2],
    ]

    now = datetime.now(UTC)
    assert await listed(submitted_from=now + timedelta(minutes=1)) == []
    assert await listed(submitted_to=now + timedelta(minutes=1), page_size=4) == newest_first
    assert await listed(submitted_to=now - timedelta(days=1)) == []


async def test_wait_reports_each_new_state_and_returns_the_final_one(client, definitions, worker):
    await create_definition(definitions, "hello")
    run_id = (await call(client.submit, "hello")).run.uuid
    loop = asyncio.get_running_loop()
    seen: list[run_pb2.Run] = []
    started, at_40 = asyncio.Event(), asyncio.Event()

    def poll(run):
        seen.append(run)
        loop.call_soon_threadsafe(started.set)
        if run.progress == 40:
            loop.call_soon_threadsafe(at_40.set)

    waiting = asyncio.create_task(call(client.wait, run_id, timeout=60, poll=poll))
    await asyncio.wait_for(started.wait(), 30)  # so the 40% below is news to the wait
    assert seen[0].status == run_pb2.RUN_STATUS_PENDING
    leased = await worker.lease()
    await worker.progress(leased, 40)
    await asyncio.wait_for(at_40.wait(), 30)
    await worker.succeed(leased)

    final = await waiting
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert is_finished(final)
    assert seen[-1] == final
    revisions = [run.revision for run in seen]
    assert revisions == sorted(set(revisions))  # each state once, in order
    assert [run.progress for run in seen if run.status == run_pb2.RUN_STATUS_RUNNING][-1] == 40


async def test_wait_on_a_finished_run_returns_at_once(client, definitions):
    await create_definition(definitions, "hello")
    run_id = (await call(client.submit, "hello")).run.uuid
    await call(client.cancel, run_id, "not needed")
    seen: list[run_pb2.Run] = []
    final = await call(client.wait, run_id, timeout=0.01, poll=seen.append)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED
    assert seen == [final]


async def test_wait_timeout_raises_with_the_last_state(client, definitions):
    await create_definition(definitions, "hello")
    run_id = (await call(client.submit, "hello")).run.uuid
    with pytest.raises(WaitTimeoutError) as raised:
        await call(client.wait, run_id, timeout=0.2)
    assert raised.value.run.uuid == run_id
    assert raised.value.run.status == run_pb2.RUN_STATUS_PENDING


async def test_wait_for_an_unknown_run(client):
    with pytest.raises(NotFoundError):
        await call(client.wait, "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b", timeout=1)


async def test_cancel_and_delete(client, definitions):
    await create_definition(definitions, "hello")
    run_id = (await call(client.submit, "hello")).run.uuid
    with pytest.raises(FailedPreconditionError):
        await call(client.delete, run_id)
    cancelled = await call(client.cancel, run_id, "because")
    assert cancelled.status == run_pb2.RUN_STATUS_CANCELLED
    assert "because" in cancelled.message
    await call(client.delete, run_id)
    with pytest.raises(NotFoundError):
        await call(client.get, run_id)
