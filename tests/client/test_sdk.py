"""The synchronous SDK (`batchyard.client.Client`) against the real server.

The client is synchronous: its calls run in a thread while the test's event loop serves
and, where a run has to move along, acts as the worker (tests/e2e and tests/docs drive
it with real worker processes).
"""

from __future__ import annotations

import asyncio
import io
import random
from datetime import UTC, datetime, timedelta

import pytest

from batchyard.client import (
    Client,
    DefinitionExistsError,
    DefinitionNotFoundError,
    ItemList,
    Paged,
    Reason,
    RetryPolicy,
    Run,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    Status,
    UnavailableError,
    VersionConflictError,
    WaitTimeoutError,
    WrongStateError,
)
from batchyard.client.core.requests import payload_bytes, status_values
from batchyard.client.core.retry import is_idempotent
from batchyard.v1 import job_pb2, run_pb2
from batchyard.v1 import run_service_pb2 as rpb
from tests.client.acting import ERR, SYS, ActingWorker, log_entry
from tests.processes import free_port

ECHO = {"type": "JOB_TYPE_SHELL", "sourceLocation": "echo", "args": ["hi"]}
UNKNOWN = "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b"


@pytest.fixture
def client(target):
    with Client(target, timeout=10) as made:
        yield made


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


async def call(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_definitions_from_a_mapping_a_file_and_a_message(client, tmp_path):
    made = await call(client.definitions.create, {"name": "echo", "config": ECHO})
    assert (made.name, made.version, list(made.config.args)) == ("echo", 1, ["hi"])
    with pytest.raises(DefinitionExistsError):
        await call(client.definitions.create, {"name": "echo", "config": ECHO})

    spec = tmp_path / "echo.yaml"
    spec.write_text("name: echo\ndescription: says hi\n")
    updated = await call(client.definitions.update, "echo", spec)  # the mask: name, description
    assert (updated.version, updated.description, list(updated.config.args)) == (
        2,
        "says hi",
        ["hi"],
    )
    args = job_pb2.JobConfig(args=["there"])
    changed = await call(
        client.definitions.update, "echo", {"config": {"args": ["there"]}}, ["config.args"]
    )
    assert list(changed.config.args) == list(args.args)
    with pytest.raises(VersionConflictError):
        await call(client.definitions.update, "echo", {"description": "x"}, expected_version=1)
    assert (await call(client.definitions.get, "echo", 1)).description == ""
    await call(client.definitions.delete, "echo")
    with pytest.raises(DefinitionNotFoundError):
        await call(client.definitions.get, "echo")


async def test_listings_are_paged_lazily_and_show_as_tables(client):
    for i in range(5):
        await call(client.definitions.create, {"name": f"d{i}", "config": ECHO})
    listing = client.definitions.list(prefix="d", limit=4, page_size=2)
    assert isinstance(listing, Paged)
    assert [d.name for d in await call(list, listing)] == ["d0", "d1", "d2", "d3"]
    assert [d.name for d in await call(listing.first, 2)] == ["d0", "d1"]
    everything = await call(client.definitions.list(page_size=2).to_list)
    assert isinstance(everything, ItemList) and len(everything) == 5
    html = await call(client.definitions.list(type="shell")._repr_html_)
    assert html.count("<tr>") == 6 and "<th>name</th>" in html and "d4" in html
    assert "&lt;" not in html
    with pytest.raises(ValueError, match="unknown job type"):
        client.definitions.list(type="perl")


async def test_submit_wait_succeeds_with_progress_lines(client, worker):
    await call(client.definitions.create, {"name": "echo", "config": ECHO})
    run = await call(client.runs.submit, "echo", args=["a", "b"], payload={"day": 1})
    assert isinstance(run, Run) and run.definition == "echo@1"
    assert list(run.state.config.args) == ["a", "b"] and run.state.payload_size == 10
    out = io.StringIO()
    waiting = asyncio.create_task(call(run.wait, timeout=60, out=out))
    leased = await worker.lease()
    await worker.progress(leased, 40)
    await asyncio.sleep(0.3)
    await worker.succeed(leased)
    assert await waiting is run
    assert run.finished and run.state.status == run_pb2.RUN_STATUS_SUCCEEDED
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("0:00:0") and f"Run {run.id!r}: " in lines[0]
    assert any(line.endswith("running (attempt 1, 40%)") for line in lines), lines
    assert lines[-1].endswith(": succeeded")
    status = await call(run.status)
    assert status == Status.SUCCEEDED and status == "succeeded"


async def test_a_failed_run_raises_with_its_log_tail_printed(client, worker):
    await call(client.definitions.create, {"name": "echo", "config": ECHO})
    run = await call(client.runs.submit, "echo")
    leased = await worker.lease()
    await worker.append(
        leased,
        [log_entry(1, message="starting"), log_entry(2, ERR, "Traceback: no input file")],
        [log_entry(3, SYS, "attempt ended: exited with code 3", level=4)],
    )
    await worker.fail(leased)
    out = io.StringIO()
    with pytest.raises(RunFailedError) as raised:
        await call(run.wait, out=out)
    error = raised.value
    assert error.run.status == run_pb2.RUN_STATUS_FAILED and run.reason == Reason.NON_ZERO_EXIT_CODE
    assert (
        str(error)
        == f"run {run.id} failed (non-zero exit code): attempt 1 on t, exit code 3: boom: no input"
    )
    assert [e.message for e in error.log_tail] == [
        "Traceback: no input file",
        "attempt ended: exited with code 3",
    ]
    printed = out.getvalue()
    assert f"run {run.id} failed: non-zero exit code" in printed
    assert (
        "Last lines of the log:" in printed and "stderr WARNING Traceback: no input file" in printed
    )
    assert "starting" not in printed  # the tail is warning and above

    quiet = io.StringIO()
    assert await call(run.wait, show_progress=False, raise_on_failure=False, out=quiet) is run
    assert quiet.getvalue() == ""
    entries = await call(run.logs, level="info", attempt=1)
    assert entries[0].message == "starting"
    assert len(await call(run.log_tail, 1)) == 1


async def test_cancel_then_reconnect_by_id(client, worker):
    await call(client.definitions.create, {"name": "echo", "config": ECHO})
    pending = await call(client.runs.submit, "echo")
    assert (await call(pending.cancel, "not today")).state.status == run_pb2.RUN_STATUS_CANCELLED
    with pytest.raises(RunCancelledError, match="was cancelled"):
        await call(pending.wait, show_progress=False)

    running = await call(client.runs.submit, "echo")
    leased = await worker.lease()
    await call(running.cancel)
    assert running.state.cancel_requested and running.state.status == run_pb2.RUN_STATUS_RUNNING
    assert await worker.progress(leased, 10)  # the worker hears the cancel at its heartbeat
    await worker.stopped(leased)
    again = await call(client.run, running.id)
    assert again.id == running.id and await call(again.status) == "cancelled"
    with pytest.raises(WrongStateError):
        await call(again.cancel)
    await call(again.delete)
    with pytest.raises(RunNotFoundError):
        await call(client.run, again.id)


async def test_follow_yields_live_entries_until_the_run_ends(client, worker):
    await call(client.definitions.create, {"name": "echo", "config": ECHO})
    run = await call(client.runs.submit, "echo")
    follower = run.follow()
    seen: list[str] = []
    reading = asyncio.create_task(call(lambda: seen.extend(e.message for e in follower)))
    leased = await worker.lease()
    await worker.append(leased, [log_entry(1, message="one"), log_entry(2, message="two")])
    await worker.append(leased, [log_entry(3, ERR, "three")])
    await worker.succeed(leased)
    await asyncio.wait_for(reading, 30)
    assert seen == ["one", "two", "three"]
    assert (follower.position.attempt, follower.position.seq) == (1, 3)
    assert [e.message for e in await call(run.logs, streams=["stderr"])] == ["three"]


async def test_runs_list_filters_and_yields_handles(client, worker):
    await call(client.definitions.create, {"name": "echo", "config": ECHO})
    first = await call(client.runs.submit, "echo")
    second = await call(client.runs.submit, "echo", request_id="r-1")
    same = await call(client.runs.submit, "echo", request_id="r-1")
    assert same.id == second.id and same.deduplicated and not second.deduplicated
    await worker.succeed(await worker.lease())  # the first
    listed = await call(client.runs.list(definition="echo").to_list)
    assert [r.id for r in listed] == [second.id, first.id]
    assert all(isinstance(r, Run) for r in listed)
    succeeded = await call(list, client.runs.list(status="succeeded"))
    assert [r.id for r in succeeded] == [first.id]
    assert await call(list, client.runs.list(status=["pending", Status.RUNNING])) != []
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await call(list, client.runs.list(submitted_after=later)) == []
    html = await call(client.runs.list()._repr_html_)
    assert second.id in html and "<th>status</th>" in html
    done = listed[1]._repr_html_()  # its state as listed: succeeded, with an attempt
    assert "<caption>run " in done and "<th>exit code</th>" in done and "succeeded" in done
    assert repr(first).startswith(f"Run({first.id!r}, ")


async def test_wait_timeout_and_unknown_run(client):
    await call(client.definitions.create, {"name": "echo", "config": ECHO})
    run = await call(client.runs.submit, "echo")
    out = io.StringIO()
    with pytest.raises(WaitTimeoutError):
        await call(run.wait, timeout=0.3, out=out)
    assert "Stopped waiting after 0.3 s" in out.getvalue() and "goes on" in out.getvalue()
    with pytest.raises(RunNotFoundError):
        await call(client.run, UNKNOWN)


async def test_sql_submits_an_ad_hoc_sql_run(client):
    run = await call(client.sql, "SELECT 1", target="warehouse", request_id="q1")
    config = run.state.config
    assert run.definition == "(ad hoc)" and config.type == job_pb2.JOB_TYPE_SQL
    assert (config.source.inline.text, config.sql_target.connection) == ("SELECT 1", "warehouse")


def test_payloads_statuses_and_idempotency():
    assert payload_bytes(None) == b"" and payload_bytes(b"\x00") == b"\x00"
    assert payload_bytes("é") == "é".encode() and payload_bytes({"a": [1]}) == b'{"a": [1]}'
    assert status_values("FAILED") == [run_pb2.RUN_STATUS_FAILED]
    with pytest.raises(ValueError, match="unknown status"):
        status_values(["done"])
    assert is_idempotent("/batchyard.v1.RunService/GetRun", rpb.GetRunRequest())
    assert is_idempotent(b"/batchyard.v1.LogService/GetLogs", None)
    assert not is_idempotent("/batchyard.v1.RunService/SubmitRun", rpb.SubmitRunRequest())
    assert is_idempotent("/batchyard.v1.RunService/SubmitRun", rpb.SubmitRunRequest(request_id="x"))
    assert not is_idempotent("/batchyard.v1.RunService/CancelRun", rpb.CancelRunRequest())


def test_retry_delays_grow_with_jitter_and_a_cap():
    policy = RetryPolicy(max_attempts=6, initial_backoff=1, max_backoff=4, jitter=0.5)
    delays = list(policy.delays(random.Random(1)))
    assert len(delays) == 5
    for delay, nominal in zip(delays, [1, 2, 4, 4, 4], strict=True):
        assert nominal / 2 <= delay <= nominal
    assert list(RetryPolicy(max_attempts=3, jitter=0).delays()) == [0.25, 0.5]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


async def test_reads_and_keyed_submits_are_retried_until_the_server_comes_up(server_factory):
    port = free_port()
    policy = RetryPolicy(max_attempts=8, initial_backoff=0.2, max_backoff=1)
    with Client(f"127.0.0.1:{port}", timeout=10, retry=policy) as client:
        with pytest.raises(UnavailableError):  # not safe to repeat: fails at once
            await call(client.definitions.create, {"name": "echo", "config": ECHO})
        assert client.retry.retries == 0
        reading = asyncio.create_task(call(lambda: list(client.definitions.list())))
        await asyncio.sleep(1.0)
        assert not reading.done()
        await server_factory(listen=f"127.0.0.1:{port}")
        assert await asyncio.wait_for(reading, 30) == []
        assert client.retry.retries >= 1

    with Client(f"127.0.0.1:{port}", timeout=10, retry=None) as client:
        await call(client.definitions.create, {"name": "echo", "config": ECHO})
        run = await call(client.runs.submit, "echo", request_id="once")
        assert client.retry.retries == 0
        assert (await call(client.runs.submit, "echo", request_id="once")).id == run.id
