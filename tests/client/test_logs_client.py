"""LogsClient and RunsClient.watch (the SDK) against the real server, the test acting as
the worker: pages, filters, following live, resuming from positions and across server
restarts.

The SDK is synchronous; its calls run in a thread while the test's event loop serves
and acts as the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from batchyard.client import connection
from batchyard.client.connection import aio_channel
from batchyard.client.core.requests import log_level, log_stream
from batchyard.client.errors import (
    BatchyardError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from batchyard.client.sync import streams
from batchyard.client.sync.logs import LogsClient
from batchyard.client.sync.runs import RunsClient
from batchyard.client.sync.streams import ResumableStream, is_broken_stream
from batchyard.v1 import (
    definition_service_pb2_grpc,
    job_pb2,
    log_pb2,
    run_pb2,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb
from tests.client.acting import (
    ERR,
    SYS,
    WARNING,
    ActingWorker,
    create_definition,
    log_entry,
    numbered,
)

RETRY_ONCE = job_pb2.JobConfig(
    type=job_pb2.JOB_TYPE_SHELL,
    source_location="echo",
    retry_strategy=job_pb2.RetryStrategy(num_retries=1, delay_between_retries=Duration()),
)


@pytest.fixture
def sdk_channel(target):
    with connection.channel(target, timeout=10) as ch:
        yield ch


@pytest.fixture
def logs(sdk_channel):
    return LogsClient(sdk_channel, timeout=10)


@pytest.fixture
def client(sdk_channel):
    return RunsClient(sdk_channel, timeout=10)


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


async def call(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


async def all_of(iterator):
    return await asyncio.to_thread(list, iterator)


def keys(entries):
    return [(e.attempt, e.seq) for e in entries]


async def submitted(definitions, runs, name="job", config=None):
    if config is None:
        await create_definition(definitions, name)
    else:
        await create_definition(definitions, name, config)
    return (await runs.SubmitRun(rpb.SubmitRunRequest(definition=name))).run.uuid


async def two_attempts(definitions, runs, worker):
    """A finished run whose log has attempt 1 (seq 1..20, the last a system line) and
    attempt 2 (seq 1..15)."""
    run_id = await submitted(definitions, runs, config=RETRY_ONCE)
    first = await worker.lease()
    await worker.append(first, numbered(1, 10), numbered(11, 19))
    await worker.append(first, [log_entry(20, SYS, "exit code 3")])
    await worker.fail(first)
    second = await worker.lease()
    await worker.append(second, numbered(1, 15, "again {seq}"))
    await worker.succeed(second)
    return run_id


EVERYTHING = [(1, s) for s in range(1, 21)] + [(2, s) for s in range(1, 16)]


# ---------------------------------------------------------------- names and pieces


def test_levels_and_streams_by_name_or_value():
    assert log_level("warning") == log_level("WARNING") == log_level("warn") == WARNING
    assert log_level("LOG_LEVEL_ERROR") == log_pb2.LOG_LEVEL_ERROR
    assert log_level(None) == log_pb2.LOG_LEVEL_UNSPECIFIED
    assert log_level(log_pb2.LOG_LEVEL_DEBUG) == log_pb2.LOG_LEVEL_DEBUG
    assert log_stream("stderr") == log_stream("LOG_STREAM_STDERR") == ERR
    assert log_stream(SYS) == SYS
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        log_level("loud")
    with pytest.raises(ValueError, match="unknown log level"):
        log_level(9)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown log stream 'stdin'"):
        log_stream("stdin")


class FakeError(grpc.RpcError, grpc.Call):
    """A failed call as grpc raises it, without trailing details."""

    def __init__(self, code, details="x"):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return None


class FakeCall:
    """A server stream: these messages, then the error (or a clean end)."""

    def __init__(self, messages, error=None):
        self.messages, self.error = messages, error
        self.cancelled = False

    def __iter__(self):
        yield from self.messages
        if self.error is not None:
            raise self.error

    def cancel(self):
        self.cancelled = True


def fake(call: FakeCall) -> Any:
    """A FakeCall where a grpc call is expected."""
    return call


def test_which_failures_reopen_a_stream():
    def error(code, details="x"):
        from batchyard.client.errors import from_rpc_error

        return from_rpc_error(FakeError(code, details))

    assert is_broken_stream(error(grpc.StatusCode.UNAVAILABLE))
    assert is_broken_stream(error(grpc.StatusCode.CANCELLED))
    assert is_broken_stream(error(grpc.StatusCode.INTERNAL, "Received RST_STREAM with code 2"))
    assert not is_broken_stream(error(grpc.StatusCode.INTERNAL, "a bug"))
    assert not is_broken_stream(error(grpc.StatusCode.DEADLINE_EXCEEDED))
    assert not is_broken_stream(error(grpc.StatusCode.NOT_FOUND))
    assert not is_broken_stream(error(grpc.StatusCode.INVALID_ARGUMENT))


def test_a_resumable_stream_reopens_from_where_it_was(monkeypatch):
    monkeypatch.setattr(streams, "FIRST_RETRY_SECONDS", 0.001)
    unavailable = FakeError(grpc.StatusCode.UNAVAILABLE)
    calls = [
        FakeCall([1, 2], unavailable),
        FakeCall([], unavailable),  # the server is down
        FakeCall([3], FakeError(grpc.StatusCode.CANCELLED)),
        FakeCall([4, 5]),  # ends: done
    ]
    opened = []

    def open_call(timeout):
        opened.append(timeout)
        return fake(calls[len(opened) - 1])

    stream: ResumableStream[Any, Any] = ResumableStream(open_call, lambda m: [m * 10])
    assert list(stream) == [10, 20, 30, 40, 50]
    assert (len(opened), stream.reconnects) == (4, 3)
    assert opened == [None] * 4  # no deadline
    assert all(c.cancelled for c in calls)  # each call released


def test_a_resumable_stream_gives_up_and_raises_what_the_server_says(monkeypatch):
    monkeypatch.setattr(streams, "FIRST_RETRY_SECONDS", 0.001)
    down: ResumableStream[Any, Any] = ResumableStream(
        lambda _: fake(FakeCall([], FakeError(grpc.StatusCode.UNAVAILABLE, "down"))),
        lambda m: [m],
        reconnect_timeout=0,
    )
    with pytest.raises(UnavailableError, match="down"):
        list(down)
    refused: ResumableStream[Any, Any] = ResumableStream(
        lambda _: fake(FakeCall([1], FakeError(grpc.StatusCode.NOT_FOUND, "no such run"))),
        lambda m: [m],
    )
    got: list[int] = []
    with pytest.raises(NotFoundError, match="no such run"):
        got.extend(refused)
    assert got == [1]


def test_a_cancelled_stream_ends_quietly():
    gate = threading.Event()

    class Blocking(FakeCall):
        def __iter__(self):
            yield 1
            gate.wait(10)
            raise FakeError(grpc.StatusCode.CANCELLED)

        def cancel(self):
            gate.set()

    stream: ResumableStream[Any, Any] = ResumableStream(lambda _: fake(Blocking([])), lambda m: [m])
    assert next(stream) == 1
    threading.Timer(0.05, stream.cancel).start()
    assert list(stream) == []
    assert stream.cancelled


# ---------------------------------------------------------------- GetLogs


async def test_iter_reads_every_entry_in_order_across_pages_and_attempts(
    logs, definitions, runs, worker
):
    run_id = await two_attempts(definitions, runs, worker)
    got = await all_of(logs.iter(run_id, page_size=7))
    assert keys(got) == EVERYTHING
    assert got[0].run == run_id
    assert [e.message for e in got[:3]] == ["stdout line 1", "stdout line 2", "stderr line 3"]
    assert got[19].message == "exit code 3"
    assert got[20].message == "again 1"
    assert keys(await all_of(logs.iter(run_id))) == EVERYTHING

    page = await call(logs.page, run_id, page_size=5, after=(1, 18))
    assert keys(page.entries) == [(1, 19), (1, 20), (2, 1), (2, 2), (2, 3)]
    assert page.next_page_token and page.run_finished
    assert (page.last_position.attempt, page.last_position.seq) == (2, 3)
    rest = await call(logs.page, run_id, page_size=5, page_token=page.next_page_token)
    assert keys(rest.entries) == [(2, s) for s in range(4, 9)]


async def test_filters_by_level_stream_and_attempt(logs, definitions, runs, worker):
    run_id = await two_attempts(definitions, runs, worker)

    async def read(**filters):
        return keys(await all_of(logs.iter(run_id, page_size=4, **filters)))

    stderr = [(a, s) for a, s in EVERYTHING if s % 3 == 0 and (a, s) != (1, 20)]
    assert await read(min_level="warning") == stderr
    assert await read(min_level=log_pb2.LOG_LEVEL_WARNING, streams=["stderr"]) == stderr
    assert await read(streams=[SYS]) == [(1, 20)]
    assert await read(streams=["stdout", "system"]) == [k for k in EVERYTHING if k not in stderr]
    assert await read(attempt=2) == [(2, s) for s in range(1, 16)]
    assert await read(attempt=2, min_level="WARNING") == [(2, 3), (2, 6), (2, 9), (2, 12), (2, 15)]
    assert await read(min_level="error") == []
    with pytest.raises(ValueError, match="unknown log stream"):
        logs.iter(run_id, streams=["stdin"])  # at the call, not at the first next()


async def test_unknown_and_malformed_runs(logs):
    missing = "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b"
    with pytest.raises(NotFoundError):
        await all_of(logs.iter(missing))
    with pytest.raises(NotFoundError):
        await all_of(logs.follow(missing))
    with pytest.raises(InvalidArgumentError):
        await call(logs.page, "not-a-uuid")


# ---------------------------------------------------------------- TailLogs


async def test_follow_from_every_position_has_no_gap_and_no_duplicate(
    logs, definitions, runs, worker
):
    run_id = await two_attempts(definitions, runs, worker)
    for i, position in enumerate([(0, 0), *EVERYTHING]):
        got = await all_of(logs.follow(run_id, after=position))
        assert keys(got) == EVERYTHING[i:], position
    follower = logs.follow(run_id, after=log_pb2.LogPosition(attempt=1, seq=17), attempt=1)
    assert keys(await all_of(follower)) == [(1, 18), (1, 19), (1, 20)]
    assert (follower.position.attempt, follower.position.seq) == (1, 20)


async def test_follow_started_before_the_run_sees_every_line_once_then_ends(
    logs, definitions, runs, worker
):
    run_id = await submitted(definitions, runs)
    loop = asyncio.get_running_loop()
    got: list[log_pb2.LogEntry] = []
    reached: dict[int, asyncio.Event] = {}

    def collect(follower, into):
        for entry in follower:
            into.append(entry)
            for seq, event in reached.items():
                if entry.seq >= seq:
                    loop.call_soon_threadsafe(event.set)

    reached[50] = asyncio.Event()
    everything = asyncio.create_task(call(collect, logs.follow(run_id), got))
    warnings: list[log_pb2.LogEntry] = []
    only_warnings = asyncio.create_task(
        call(collect, logs.follow(run_id, min_level="warning"), warnings)
    )
    leased = await worker.lease()
    await worker.append(leased, numbered(1, 25), numbered(26, 50))
    await asyncio.wait_for(reached[50].wait(), 30)  # live: seen before the rest is sent
    assert keys(got) == [(1, s) for s in range(1, 51)]
    await worker.append(leased, numbered(51, 120))
    await worker.succeed(leased)
    await asyncio.wait_for(everything, 30)  # ends by itself once the run has ended
    await asyncio.wait_for(only_warnings, 30)
    assert keys(got) == [(1, s) for s in range(1, 121)]
    assert [e.message for e in got[:3]] == ["stdout line 1", "stdout line 2", "stderr line 3"]
    assert keys(warnings) == [(1, s) for s in range(3, 121, 3)]


async def test_follow_only_new_lines(logs, definitions, runs, worker):
    run_id = await submitted(definitions, runs)
    leased = await worker.lease()
    await worker.append(leased, numbered(1, 30))
    loop = asyncio.get_running_loop()
    got: list[log_pb2.LogEntry] = []
    arrived = asyncio.Event()

    def collect():
        for entry in logs.follow(run_id, only_new=True):
            got.append(entry)
            loop.call_soon_threadsafe(arrived.set)

    following = asyncio.create_task(asyncio.to_thread(collect))
    # Lines appended before the follower has read the end of the log count as old:
    # append one at a time until the follower gets one.
    seq = 30
    while not arrived.is_set():
        assert seq < 200, "the follower never received a new line"
        seq += 1
        await worker.append(leased, [log_entry(seq)])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), 0.2)
    await worker.append(leased, numbered(seq + 1, seq + 10))
    await worker.succeed(leased)
    await asyncio.wait_for(following, 30)
    first = got[0].seq
    assert first > 30  # nothing that was stored when it started
    assert [e.seq for e in got] == list(range(first, seq + 11))  # then every line, once


async def test_cancel_ends_a_follow_at_once(logs, definitions, runs, worker):
    run_id = await submitted(definitions, runs)
    leased = await worker.lease()
    await worker.append(leased, numbered(1, 3))
    follower = logs.follow(run_id)
    assert (await call(next, follower)).seq == 1
    threading.Timer(0.1, follower.cancel).start()
    assert keys(await all_of(follower)) == [(1, 2), (1, 3)]  # then it ends, run going on
    assert follower.cancelled


async def test_follow_gives_up_on_a_server_that_stays_away(closed_target):
    with connection.channel(closed_target, timeout=5) as ch:
        follower = LogsClient(ch).follow(
            "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b", reconnect_timeout=0.3
        )
        with pytest.raises(UnavailableError):
            await all_of(follower)
        assert follower.reconnects >= 1


# ---------------------------------------------------------------- across server restarts


class Recorder(grpc.UnaryStreamClientInterceptor, grpc.UnaryUnaryClientInterceptor):
    """Records the request of every server-streaming call made on a channel, and the
    method of every unary one."""

    def __init__(self):
        self.requests = []
        self.unary = []

    def intercept_unary_stream(self, continuation, client_call_details, request):
        self.requests.append(request)
        return continuation(client_call_details, request)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        self.unary.append(client_call_details.method.rsplit("/", 1)[-1])
        return continuation(client_call_details, request)


class Restartable:
    """A server on a fixed port over the test's database, stopped and started again;
    `worker` and the stubs follow it."""

    def __init__(self, server_factory):
        self.factory = server_factory
        self.app: Any = None
        self.channel: Any = None

    async def start(self, port=0):
        self.app = await self.factory(listen=f"127.0.0.1:{port}")
        self.channel = aio_channel(self.target)
        self.worker = ActingWorker(worker_service_pb2_grpc.WorkerServiceStub(self.channel))
        self.runs = run_service_pb2_grpc.RunServiceStub(self.channel)
        self.definitions = definition_service_pb2_grpc.DefinitionServiceStub(self.channel)
        return self

    @property
    def target(self):
        return f"127.0.0.1:{self.app.port}"

    async def restart(self):
        port = self.app.port
        await self.channel.close()
        await self.app.stop(0)  # every open stream is cut
        await self.start(port)

    async def close(self):
        await self.channel.close()


@pytest.fixture
async def restartable(server_factory):
    server = await Restartable(server_factory).start()
    yield server
    await server.close()


async def test_follow_resumes_across_server_restarts_with_no_gap_and_no_duplicate(restartable):
    srv = restartable
    run_id = await submitted(srv.definitions, srv.runs)
    leased = await srv.worker.lease()
    loop = asyncio.get_running_loop()
    got: list[log_pb2.LogEntry] = []
    counts: dict[int, asyncio.Event] = {}

    recorder = Recorder()
    with connection.channel(srv.target, timeout=10) as ch:
        follower = LogsClient(grpc.intercept_channel(ch, recorder)).follow(
            run_id, reconnect_timeout=60
        )

        def collect():
            for entry in follower:
                got.append(entry)
                if entry.seq in counts:
                    loop.call_soon_threadsafe(counts[entry.seq].set)

        for seq in (100, 200, 300):
            counts[seq] = asyncio.Event()
        following = asyncio.create_task(asyncio.to_thread(collect))
        for batch in range(3):
            first = batch * 100 + 1
            await srv.worker.append(
                leased, numbered(first, first + 49), numbered(first + 50, first + 99)
            )
            await asyncio.wait_for(counts[first + 99].wait(), 30)
            if batch < 2:
                await srv.restart()  # the follower's stream breaks; it reconnects
        await srv.worker.succeed(leased)
        await asyncio.wait_for(following, 30)

    assert keys(got) == [(1, s) for s in range(1, 301)]
    assert follower.reconnects >= 2
    # Each reopened stream asked for what follows the last position received.
    resumed_after = {(r.after.attempt, r.after.seq) for r in recorder.requests}
    assert resumed_after == {(0, 0), (1, 100), (1, 200)}


async def test_watch_resumes_across_a_server_restart(restartable):
    srv = restartable
    run_id = await submitted(srv.definitions, srv.runs)
    loop = asyncio.get_running_loop()
    seen: list[run_pb2.Run] = []
    at = {0: asyncio.Event(), 30: asyncio.Event(), 70: asyncio.Event()}

    with connection.channel(srv.target, timeout=10) as ch:
        watcher = RunsClient(ch).watch(run_id, reconnect_timeout=60)

        def collect():
            for run in watcher:
                seen.append(run)
                if run.progress in at:
                    loop.call_soon_threadsafe(at[run.progress].set)

        watching = asyncio.create_task(asyncio.to_thread(collect))
        await asyncio.wait_for(at[0].wait(), 30)  # the pending state
        leased = await srv.worker.lease()
        await srv.worker.progress(leased, 30)
        await asyncio.wait_for(at[30].wait(), 30)
        await srv.restart()
        await srv.worker.progress(leased, 70)
        await asyncio.wait_for(at[70].wait(), 30)  # seen through the new server
        await srv.worker.succeed(leased)
        await asyncio.wait_for(watching, 30)

    revisions = [run.revision for run in seen]
    assert revisions == sorted(set(revisions))  # each state once, in order
    assert seen[0].status == run_pb2.RUN_STATUS_PENDING
    assert seen[-1].status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [r.progress for r in seen if r.status == run_pb2.RUN_STATUS_RUNNING][-1] == 70
    assert watcher.reconnects >= 1 and watcher.revision == revisions[-1]


# ---------------------------------------------------------------- WatchRun


async def test_watch_from_a_revision_and_of_a_finished_run(client, definitions, runs, worker):
    run_id = await submitted(definitions, runs)
    leased = await worker.lease()
    await worker.progress(leased, 50)
    await worker.succeed(leased)
    final = await call(client.get, run_id)
    assert [r.revision for r in await all_of(client.watch(run_id))] == [final.revision]
    assert await all_of(client.watch(run_id, after_revision=final.revision)) == []
    with pytest.raises(NotFoundError):
        await all_of(client.watch("0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b"))


async def test_wait_streams_the_states_instead_of_polling(sdk_channel, definitions, runs, worker):
    recorder = Recorder()
    client = RunsClient(grpc.intercept_channel(sdk_channel, recorder), timeout=10)
    run_id = await submitted(definitions, runs)
    loop = asyncio.get_running_loop()
    progressed = asyncio.Event()
    seen: list[run_pb2.Run] = []

    def poll(run):
        seen.append(run)
        if run.progress:
            loop.call_soon_threadsafe(progressed.set)

    waiting = asyncio.create_task(call(client.wait, run_id, poll=poll))
    leased = await worker.lease()
    for percent in (10, 20, 30, 40):
        await worker.progress(leased, percent)
    await asyncio.wait_for(progressed.wait(), 30)
    await worker.succeed(leased)
    final = await asyncio.wait_for(waiting, 30)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED and seen[-1] == final
    assert recorder.unary == ["GetRun"]  # the first state; the rest came from WatchRun
    assert [type(r).__name__ for r in recorder.requests] == ["WatchRunRequest"]
    assert recorder.requests[0].after_revision == seen[0].revision


async def test_errors_raised_while_following_are_typed(logs):
    with pytest.raises(BatchyardError) as raised:
        await all_of(logs.follow("not-a-uuid"))
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def closed_target():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"
