"""The asyncio SDK (`batchyard.client.AsyncClient`) against the real server: the same surface
as `Client`, awaited; the test acts as the worker."""

from __future__ import annotations

import asyncio
import io

import pytest

from batchyard.client import (
    AsyncClient,
    AsyncPaged,
    AsyncRun,
    DefinitionExistsError,
    DefinitionNotFoundError,
    ItemList,
    RetryPolicy,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    Status,
    UnavailableError,
    WaitTimeoutError,
    WrongStateError,
)
from batchyard.v1 import run_pb2
from tests.client.acting import ERR, ActingWorker, log_entry
from tests.processes import free_port

ECHO = {"type": "JOB_TYPE_SHELL", "sourceLocation": "echo", "args": ["hi"]}


@pytest.fixture
async def client(target):
    async with AsyncClient(target, timeout=10) as made:
        yield made


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


async def test_definitions(client, tmp_path):
    made = await client.definitions.create({"name": "echo", "config": ECHO})
    assert made.version == 1
    with pytest.raises(DefinitionExistsError):
        await client.definitions.create(made)
    (tmp_path / "d.json").write_text('{"description": "json file"}')
    assert (await client.definitions.update("echo", tmp_path / "d.json")).version == 2
    listing = client.definitions.list(prefix="e", page_size=1)
    assert isinstance(listing, AsyncPaged)
    assert [d.name async for d in listing] == ["echo"]
    assert isinstance(await listing.to_list(), ItemList)
    assert (await client.definitions.get("echo", 1)).description == ""
    await client.definitions.delete("echo")
    with pytest.raises(DefinitionNotFoundError):
        await client.definitions.get("echo")


async def test_submit_wait_with_progress_then_failure_with_log_tail(client, worker):
    await client.definitions.create({"name": "echo", "config": ECHO})
    run = await client.runs.submit("echo", payload="text")
    assert isinstance(run, AsyncRun) and run.state.payload_size == 4
    out = io.StringIO()
    waiting = asyncio.create_task(run.wait(timeout=60, out=out))
    leased = await worker.lease()
    await worker.progress(leased, 70)
    await asyncio.sleep(0.3)
    await worker.succeed(leased)
    assert await waiting is run and await run.status() == Status.SUCCEEDED
    assert any(line.endswith("running (attempt 1, 70%)") for line in out.getvalue().splitlines())

    failing = await client.runs.submit("echo")
    leased = await worker.lease()
    await worker.append(leased, [log_entry(1, message="fine"), log_entry(2, ERR, "KeyError: 'x'")])
    await worker.fail(leased, exit_code=2)
    printed = io.StringIO()
    with pytest.raises(RunFailedError) as raised:
        await failing.wait(out=printed)
    assert raised.value.run.attempts[-1].exit_code == 2
    assert [e.message for e in raised.value.log_tail] == ["KeyError: 'x'"]
    assert "KeyError: 'x'" in printed.getvalue()
    assert [e.message for e in await failing.logs()] == ["fine", "KeyError: 'x'"]
    assert [e.message for e in await failing.log_tail(1)] == ["KeyError: 'x'"]


async def test_cancel_follow_watch_and_reconnect(client, worker):
    await client.definitions.create({"name": "echo", "config": ECHO})
    run = await client.runs.submit("echo")
    seen: list[str] = []

    async def read() -> None:
        async for entry in run.follow(level="info"):
            seen.append(entry.message)

    reading = asyncio.create_task(read())
    states: list[run_pb2.Run] = []

    async def watch() -> None:
        async for state in run.watch():
            states.append(state)

    watching = asyncio.create_task(watch())
    leased = await worker.lease()
    await worker.append(leased, [log_entry(1, message="working")])
    again = await client.run(run.id)  # a second handle, by id
    await again.cancel("enough")
    assert again.state.cancel_requested
    assert await worker.progress(leased, 5)
    await worker.stopped(leased)
    await asyncio.wait_for(asyncio.gather(reading, watching), 30)
    assert seen == ["working"]
    assert states[-1].status == run_pb2.RUN_STATUS_CANCELLED and run.finished
    with pytest.raises(RunCancelledError):
        await again.wait(show_progress=False)
    with pytest.raises(WrongStateError):
        await run.cancel()
    await run.delete()
    with pytest.raises(RunNotFoundError):
        await client.run(run.id)


async def test_list_timeout_and_stopping_a_follower(client):
    await client.definitions.create({"name": "echo", "config": ECHO})
    first = await client.runs.submit("echo")
    second = await client.runs.submit("echo", request_id="k")
    assert (await client.runs.submit("echo", request_id="k")).deduplicated
    listed = await client.runs.list(status="pending", page_size=1).to_list()
    assert [r.id for r in listed] == [second.id, first.id]
    assert [r.id for r in await client.runs.list().first(1)] == [second.id]
    out = io.StringIO()
    with pytest.raises(WaitTimeoutError):
        await first.wait(timeout=0.3, out=out)
    assert "Stopped waiting" in out.getvalue()
    follower = first.follow()
    reading = asyncio.create_task(anext(follower, None))
    await asyncio.sleep(0.2)
    follower.cancel()
    assert await asyncio.wait_for(reading, 10) is None
    run = await client.sql("SELECT 1", target="warehouse")
    assert run.definition == "(ad hoc)"


async def test_reads_are_retried_until_the_server_comes_up(server_factory):
    port = free_port()
    policy = RetryPolicy(max_attempts=8, initial_backoff=0.2, max_backoff=1)
    async with AsyncClient(f"127.0.0.1:{port}", timeout=10, retry=policy) as client:
        with pytest.raises(UnavailableError):
            await client.definitions.create({"name": "echo", "config": ECHO})
        assert client.retry.retries == 0
        reading = asyncio.create_task(client.definitions.list().to_list())
        await asyncio.sleep(1.0)
        assert not reading.done()
        await server_factory(listen=f"127.0.0.1:{port}")
        assert await asyncio.wait_for(reading, 30) == []
        assert client.retry.retries >= 1
        await client.definitions.create({"name": "echo", "config": ECHO})
        run = await client.runs.submit("echo", request_id="once")
        assert (await client.runs.submit("echo", request_id="once")).id == run.id
