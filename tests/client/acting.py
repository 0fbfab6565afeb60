"""Helpers for client tests: a stand-in worker over real gRPC, definitions, output waits.

No worker process runs in client tests; `ActingWorker` makes the WorkerService calls a
worker would (lease, append log lines, progress, complete) so runs move along.
"""

from __future__ import annotations

import asyncio
import io
import sys

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from batchyard.v1 import definition_pb2, job_pb2, log_pb2, run_pb2
from batchyard.v1 import definition_service_pb2 as def_pb
from batchyard.v1 import worker_service_pb2 as pb

SHELL_CONFIG = job_pb2.JobConfig(
    type=job_pb2.JOB_TYPE_SHELL, source_location="echo", args=["from", "definition"]
)


OUT, ERR, SYS = log_pb2.LOG_STREAM_STDOUT, log_pb2.LOG_STREAM_STDERR, log_pb2.LOG_STREAM_SYSTEM
DEBUG, INFO = log_pb2.LOG_LEVEL_DEBUG, log_pb2.LOG_LEVEL_INFO
WARNING, ERROR = log_pb2.LOG_LEVEL_WARNING, log_pb2.LOG_LEVEL_ERROR
# 2024-05-01 12:00:00 UTC: entry i of `log_entry` is read at 12:00:00 + i * 1.001 s.
BASE_SECONDS = 1714564800


def log_entry(seq, stream=OUT, message=None, level=None):
    """An entry as a worker sends it: stderr is WARNING and the rest INFO unless `level`."""
    if level is None:
        level = WARNING if stream == ERR else INFO
    millis = seq * 1001
    return log_pb2.LogEntry(
        seq=seq,
        stream=stream,
        level=level,
        message=f"line {seq}" if message is None else message,
        time=Timestamp(seconds=BASE_SECONDS + millis // 1000, nanos=millis % 1000 * 1_000_000),
    )


def numbered(first, last, message="{stream} line {seq}"):
    """Entries first..last: every third on stderr, the rest on stdout."""
    out = []
    for seq in range(first, last + 1):
        stream = ERR if seq % 3 == 0 else OUT
        name = "stderr" if stream == ERR else "stdout"
        out.append(log_entry(seq, stream, message.format(seq=seq, stream=name)))
    return out


async def create_definition(stub, name, config=SHELL_CONFIG):
    response = await stub.CreateDefinition(
        def_pb.CreateDefinitionRequest(
            definition=definition_pb2.Definition(name=name, config=config)
        )
    )
    return response.definition


class ActingWorker:
    """Acts as a worker named "t" over the real WorkerService."""

    def __init__(self, stub, worker_id="t"):
        self.stub = stub
        self.worker_id = worker_id

    async def lease(self, queue="default"):
        """The next run of `queue`, waiting up to 5 s for one to be submitted."""
        response = await self.stub.LeaseRuns(
            pb.LeaseRunsRequest(
                worker_id=self.worker_id, queues=[queue], max_runs=1, wait=Duration(seconds=5)
            )
        )
        assert len(response.runs) == 1, "no run to lease"
        return response.runs[0]

    async def append(self, leased, *batches):
        """Send log entries in batches over one AppendLogs stream; the acked seq."""
        requests = [
            pb.AppendLogsRequest(
                run=leased.run, attempt=leased.attempt, lease_id=leased.lease_id, entries=batch
            )
            for batch in batches
        ]
        return (await self.stub.AppendLogs(iter(requests))).acked_seq

    async def progress(self, leased, percent):
        """Heartbeat with progress; returns whether a cancel was requested."""
        response = await self.stub.RenewLease(
            pb.RenewLeaseRequest(
                run=leased.run, attempt=leased.attempt, lease_id=leased.lease_id, progress=percent
            )
        )
        return response.cancel_requested

    async def complete(self, leased, status, **fields):
        return await self.stub.CompleteRun(
            pb.CompleteRunRequest(
                run=leased.run,
                attempt=leased.attempt,
                lease_id=leased.lease_id,
                status=status,
                **fields,
            )
        )

    async def succeed(self, leased):
        return await self.complete(leased, run_pb2.RUN_STATUS_SUCCEEDED, exit_code=0)

    async def fail(self, leased, exit_code=3, message="boom: no input"):
        return await self.complete(
            leased,
            run_pb2.RUN_STATUS_FAILED,
            reason=run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE,
            exit_code=exit_code,
            message=message,
        )

    async def stopped(self, leased):
        return await self.complete(leased, run_pb2.RUN_STATUS_CANCELLED, message="stopped")


class WatchedStream(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr (writing through to it) so a test can wait,
    in its event loop, until a command running in a thread has printed some text. With
    `tty`, it says it is a terminal."""

    def __init__(self, inner, loop, tty=False):
        self.inner = inner
        self.loop = loop
        self.tty = tty
        self.seen = ""
        self.waiters = []

    def isatty(self):
        return self.tty

    def write(self, text):
        self.inner.write(text)
        self.loop.call_soon_threadsafe(self._add, text)
        return len(text)

    def flush(self):
        self.inner.flush()

    def _add(self, text):
        self.seen += text
        for needle, future in self.waiters:
            if needle in self.seen and not future.done():
                future.set_result(None)

    async def wait_for(self, needle, timeout=30):
        """Return once `needle` has been printed (fail after `timeout` seconds)."""
        if needle in self.seen:
            return
        future = self.loop.create_future()
        self.waiters.append((needle, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(f"never printed {needle!r}; printed:\n{self.seen}") from None


WatchedStderr = WatchedStream


def watch_stderr(monkeypatch, tty=False):
    watched = WatchedStream(sys.stderr, asyncio.get_running_loop(), tty)
    monkeypatch.setattr(sys, "stderr", watched)
    return watched


def watch_stdout(monkeypatch, tty=False):
    watched = WatchedStream(sys.stdout, asyncio.get_running_loop(), tty)
    monkeypatch.setattr(sys, "stdout", watched)
    return watched
