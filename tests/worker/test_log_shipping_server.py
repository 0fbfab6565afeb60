"""Log shipping against the real server (in process, real PostgreSQL): what a job prints is
what GetLogs returns, once, in order — through resends, a cancel and a server restart."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import grpc
import pytest

from batchyard.server.app import App
from batchyard.v1 import log_pb2, log_service_pb2_grpc, run_pb2, task_pb2, worker_service_pb2
from batchyard.v1 import log_service_pb2 as lpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.worker.execution.attempt import ExecutionOptions
from batchyard.worker.leasing.attempt import LeasedAttempt
from batchyard.worker.outcome import Outcome
from batchyard.worker.output.collector import Level, LogRecord, Stream
from batchyard.worker.output.lines import truncation_marker
from batchyard.worker.server_api import Lease, WorkerApi
from batchyard.worker.shipping.shipper import LogShipper, ShippingOptions
from tests.server.helpers import complete, define, get, lease, submit
from tests.worker.jobs import wait_for
from tests.worker.log_server import LEVELS, STREAMS, T0, records, rpc_error

OUT, ERR, SYS = log_pb2.LOG_STREAM_STDOUT, log_pb2.LOG_STREAM_STDERR, log_pb2.LOG_STREAM_SYSTEM
LINES = 20_000
FAST = ShippingOptions(flush_interval=0.01, backoff_initial=0.01, backoff_maximum=0.2)

PRINTER = r"""
import sys
out, err = sys.stdout.buffer, sys.stderr.buffer
for i in range(1, {lines} + 1):
    (out if i % 2 else err).write(b"line %d\n" % i)
    if i % 1000 == 0:
        out.flush(); err.flush()
out.write(b"x" * 100000 + b"\n")
out.write(b"bin \x00\xff\xfe end\n")
out.write(b"cr1\rcr2\r\ncr3\n")
out.write(b"::progress 50\n")
out.write(b"\n")
out.write(b"no newline")
err.write(b"err no newline")
"""


class RecordingApi(WorkerApi):
    """The real WorkerApi; CompleteRun first notes how much of the log is stored or carried
    by the call itself (the shipper may hand its last entries to CompleteRun)."""

    def __init__(self, channel: grpc.aio.Channel, **kwargs: Any) -> None:
        super().__init__(channel, **kwargs)
        self.logs = log_service_pb2_grpc.LogServiceStub(channel)
        self.stored_at_complete: list[int] = []
        self.carried: list[int] = []

    async def complete(
        self,
        lease: Lease,
        outcome: Outcome,
        logs: bytes = b"",
        tasks: task_pb2.TaskSummary | None = None,
    ) -> run_pb2.RunStatus.ValueType:
        carried = len(worker_service_pb2.AppendLogsRequest.FromString(logs).entries)
        self.stored_at_complete.append(len(await read_log(self.logs, lease.run)) + carried)
        self.carried.append(carried)
        return await super().complete(lease, outcome, logs, tasks)


async def read_log(logs: Any, run_id: str, **fields: Any) -> list[log_pb2.LogEntry]:
    entries: list[log_pb2.LogEntry] = []
    token = ""
    while True:
        page = await logs.GetLogs(
            lpb.GetLogsRequest(run=run_id, page_token=token, page_size=10_000, **fields)
        )
        entries += page.entries
        token = page.next_page_token
        if not token:
            return entries


@pytest.fixture
def logs(channel: grpc.aio.Channel) -> log_service_pb2_grpc.LogServiceStub:
    return log_service_pb2_grpc.LogServiceStub(channel)


@pytest.fixture
def api(channel: grpc.aio.Channel) -> RecordingApi:
    return RecordingApi(channel, worker_id="w-test", queues=("default",))


def attempt_for(
    leased: worker_service_pb2.LeasedRun,
    api: WorkerApi,
    options: ExecutionOptions,
    tmp_path: Path,
    renew_interval: float = 0.2,
) -> LeasedAttempt:
    return LeasedAttempt(
        leased,
        renew_interval=renew_interval,
        api=api,
        options=ExecutionOptions(**{**options.__dict__, "worker_id": "w-test"}),
        reaper=None,
        shipping=ShippingOptions(spool_dir=tmp_path / "spool", flush_interval=0.01),
    )


async def test_what_a_job_prints_is_stored_exactly_before_the_run_completes(
    definitions, runs, workers, logs, api, options, tmp_path
):
    script = PRINTER.format(lines=LINES)
    await define(definitions, sourceLocation=sys.executable, args=["-c", script])
    run = await submit(runs)
    (leased,) = await lease(workers)
    await attempt_for(leased, api, options, tmp_path).run()

    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED, final
    assert final.progress == 50
    entries = await read_log(logs, run.uuid)
    assert api.stored_at_complete == [len(entries)]  # every line was stored before CompleteRun
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert {(e.run, e.attempt) for e in entries} == {(run.uuid, 1)}

    stdout = [e.message for e in entries if e.stream == OUT]
    stderr = [e.message for e in entries if e.stream == ERR]
    system = [e.message for e in entries if e.stream == SYS]
    assert stdout == [
        *(f"line {i}" for i in range(1, LINES + 1, 2)),
        "x" * 16384 + truncation_marker(100_000 - 16384),
        "bin \ufffd\ufffd\ufffd end",
        "cr1",
        "cr2",
        "cr3",
        "",
        "no newline",
    ]
    assert stderr == [*(f"line {i}" for i in range(2, LINES + 1, 2)), "err no newline"]
    assert system[0] == f"attempt 1 of run {run.uuid} started on worker w-test"
    assert system[-1] == "attempt ended: exited with code 0"
    assert entries[0].stream == SYS and entries[-1].stream == SYS
    levels: dict[int, set[int]] = {e.stream: set() for e in entries}
    for e in entries:
        levels[e.stream].add(e.level)
    assert levels[OUT] == {log_pb2.LOG_LEVEL_INFO}
    assert levels[ERR] == {log_pb2.LOG_LEVEL_WARNING}
    assert all(e.time.seconds > 0 for e in entries)


async def test_resends_after_a_broken_stream_and_a_lost_answer_double_nothing(
    definitions, runs, workers, logs, api
):
    await define(definitions)
    run = await submit(runs)
    (leased,) = await lease(workers)
    fence = Lease(leased.run, leased.attempt, leased.lease_id)
    calls = 0

    async def flaky(requests: Sequence[bytes], deadline: float) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:  # the stream breaks after its first message went in
            await api.append_logs(requests[:1], deadline)
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "stream broken")
        if calls == 2:  # everything went in, the answer is lost
            await api.append_logs(requests, deadline)
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "answer lost")
        return await api.append_logs(requests, deadline)

    shipper = LogShipper(fence, flaky, FAST)
    items = records(5000)
    for record in items[:3000]:
        shipper.emit(record)
    shipper.start()
    await wait_for(lambda: shipper.acked_seq >= 3000, "the first batch to be acknowledged")
    for record in items[3000:]:
        shipper.emit(record)
    shipper.close()
    assert await shipper.wait_shipped()
    assert calls >= 4

    # A shipper made to resend from an older acknowledgement: the server keeps each seq once.
    again = LogShipper(fence, api.append_logs, FAST)
    for record in items[1000:]:
        again.emit(record)
    again.close()
    assert await again.wait_shipped()
    assert again.acked_seq == 5000

    stored = await read_log(logs, run.uuid)
    assert [(e.seq, e.stream, e.level, e.message) for e in stored] == [
        (r.seq, STREAMS[r.stream], LEVELS[r.level], r.message) for r in items
    ]
    assert [e.time.ToDatetime(tzinfo=UTC) for e in stored] == [r.time for r in items]


async def test_after_the_lease_is_gone_shipping_stops_quietly(definitions, runs, workers, api):
    await define(definitions)
    await submit(runs)
    (leased,) = await lease(workers)
    await complete(workers, leased)  # the lease ends with the run
    lost: list[bool] = []
    shipper = LogShipper(
        Lease(leased.run, leased.attempt, leased.lease_id),
        api.append_logs,
        FAST,
        on_lease_lost=lambda: lost.append(True),
    )
    shipper.start()
    shipper.emit(LogRecord(1, T0, Stream.STDOUT, Level.INFO, "too late"))
    shipper.close()
    assert not await shipper.wait_shipped()
    assert shipper.lease_lost and lost == [True]


async def test_a_cancelled_runs_log_is_shipped_live_and_to_the_end(
    definitions, runs, workers, logs, api, options, tmp_path
):
    script = "import time\nfor i in range(5): print(f'working {i}', flush=True)\ntime.sleep(60)"
    await define(definitions, sourceLocation=sys.executable, args=["-c", script])
    run = await submit(runs)
    (leased,) = await lease(workers)
    attempt = attempt_for(leased, api, options, tmp_path, renew_interval=0.1)
    task = asyncio.create_task(attempt.run())
    try:
        stdout = [log_pb2.LOG_STREAM_STDOUT]

        async def lines_so_far() -> list[str]:
            return [e.message for e in await read_log(logs, run.uuid, streams=stdout)]

        seen: list[str] = []

        async def poll() -> bool:
            seen[:] = await lines_so_far()
            return len(seen) == 5

        await wait_until(poll, "the job's lines to be stored while it runs")
        await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
        await task
    finally:
        task.cancel()
    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED
    entries = await read_log(logs, run.uuid)
    assert [e.message for e in entries if e.stream == OUT] == [f"working {i}" for i in range(5)]
    system = [e.message for e in entries if e.stream == SYS]
    assert "stopping the job: cancel requested by a user" in system
    assert any(line.startswith("sent SIGTERM") for line in system)
    assert system[-1] == "attempt ended: cancelled by user"
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


async def test_logs_wait_out_a_server_restart_then_arrive_once(
    server: App,
    server_factory: Callable[..., Awaitable[App]],
    definitions,
    runs,
    workers,
    logs,
    api,
    options,
    tmp_path,
):
    go, done = tmp_path / "go", tmp_path / "done"
    script = (
        "import os, sys, time\n"
        "for i in range(1000): print(f'before {i}', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "for i in range(3000): print(f'after {i}', file=sys.stderr if i % 2 else sys.stdout)\n"
        f"open({str(done)!r}, 'w').close()\n"
    )
    await define(definitions, sourceLocation=sys.executable, args=["-c", script])
    run = await submit(runs)
    (leased,) = await lease(workers)
    attempt = attempt_for(leased, api, options, tmp_path, renew_interval=0.2)
    task = asyncio.create_task(attempt.run())
    try:

        async def before_stored() -> bool:
            return len(await read_log(logs, run.uuid, streams=[OUT])) == 1000

        await wait_until(before_stored, "the first lines to be stored")
        await server.stop(0)
        go.touch()
        await wait_for(done.exists, "the job to finish while the server is down", within=20)
        await server_factory(listen=f"127.0.0.1:{server.port}")
        await asyncio.wait_for(task, 60)
    finally:
        task.cancel()
    final = await get(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED, final
    entries = await read_log(logs, run.uuid)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    out = [e.message for e in entries if e.stream == OUT]
    err = [e.message for e in entries if e.stream == ERR]
    assert out == [f"before {i}" for i in range(1000)] + [f"after {i}" for i in range(0, 3000, 2)]
    assert err == [f"after {i}" for i in range(1, 3000, 2)]


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
