"""`batchyard queues ...`, `runs get` showing why a run waits, and `client.queues` (both
faces), against the real server."""

from __future__ import annotations

import asyncio
import json

import pytest

from batchyard.client import (
    AsyncClient,
    Client,
    QueueExistsError,
    QueueNotFoundError,
    WrongStateError,
)
from batchyard.v1 import job_pb2, queue_pb2
from tests.client.acting import create_definition
from tests.client.cli_runner import Cli


@pytest.fixture
def cli(capsys, target):
    return Cli(capsys, target, "queues")


@pytest.fixture
def runs_cli(capsys, target):
    return Cli(capsys, target, "runs", "--request-timeout")


async def test_queues_created_paused_resumed_updated_and_deleted(cli):
    code, out, err = await cli("create", "gpu", "--priority", "10", "--limit", "4")
    assert code == 0, err
    assert out.split("\n")[1].split() == ["gpu", "enabled", "10", "4", "0", "0", "-"]
    code, out, _ = await cli("pause", "gpu")
    assert code == 0 and "paused" in out
    code, out, _ = await cli("get", "gpu", "-o", "json")
    got = json.loads(out)
    assert (got["state"], got["stats"]["paused"], got["concurrencyLimit"]) == (
        "QUEUE_STATE_PAUSED",
        True,
        4,
    )
    code, out, _ = await cli("resume", "gpu")
    assert code == 0 and "enabled" in out
    code, out, _ = await cli("update", "gpu", "--no-limit", "--description", "big boxes")
    assert code == 0
    code, out, _ = await cli("get", "gpu")
    assert "Concurrency limit: none" in out and "big boxes" in out
    code, out, _ = await cli("list")
    assert [line.split()[0] for line in out.strip().split("\n")[1:]] == ["default", "gpu"]
    code, _, err = await cli("create", "gpu")
    assert code != 0 and "already exists" in err
    assert (await cli("delete", "gpu"))[0] == 0
    code, _, err = await cli("get", "gpu")
    assert code != 0 and "'gpu' does not exist" in err
    code, _, err = await cli("delete", "default")
    assert code != 0 and "default queue cannot be deleted" in err


async def test_runs_get_says_the_queue_is_paused(cli, runs_cli, definitions):
    await create_definition(definitions, "hello")
    assert (await cli("create", "held", "--paused"))[0] == 0
    code, out, err = await runs_cli("submit", "hello", "--queue", "held")
    assert code == 0, err
    run_id = out.split()[2]
    code, out, _ = await runs_cli("get", run_id)
    assert "queue paused" in out and "queue 'held' is paused" in out
    await cli("resume", "held")
    code, out, _ = await runs_cli("get", run_id)
    assert "in queue 'held', 0 runs ahead" in out
    code, _, err = await runs_cli("submit", "hello", "--queue", "nowhere")
    assert code != 0 and "overrides.queue" in err and "nowhere" in err


async def test_sync_client_queues(target):
    await asyncio.to_thread(_sync_client_queues, target)


def _sync_client_queues(target):
    with Client(target, timeout=10) as client:
        made = client.queues.create("etl", priority=3, concurrency_limit=2)
        assert (made.priority, made.concurrency_limit) == (3, 2)
        assert client.queues.pause("etl").state == queue_pb2.QUEUE_STATE_PAUSED
        assert client.queues.resume("etl").stats.paused is False
        assert client.queues.update("etl", concurrency_limit=None).concurrency_limit == 0
        assert [q.name for q in client.queues.list()] == ["default", "etl"]
        with pytest.raises(QueueExistsError):
            client.queues.create("etl")
        with pytest.raises(WrongStateError):
            client.queues.delete("default")
        client.queues.delete("etl")
        with pytest.raises(QueueNotFoundError):
            client.queues.get("etl")
        ad_hoc = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="true", queue="etl")
        with pytest.raises(QueueNotFoundError) as info:
            client.runs.submit(config=ad_hoc)
        assert [f for f, _ in info.value.field_violations] == ["config.queue"]


async def test_async_client_queues(target):
    async with AsyncClient(target, timeout=10) as client:
        await client.queues.create("nightly", paused=True)
        got = await client.queues.get("nightly")
        assert got.stats.paused and got.stats.pending == 0
        await client.queues.resume("nightly")
        names = [q.name async for q in client.queues.list()]
        assert names == ["default", "nightly"]
        await client.queues.delete("nightly")
        with pytest.raises(QueueNotFoundError):
            await asyncio.wait_for(client.queues.get("nightly"), 10)
