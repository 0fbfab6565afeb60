"""An in-memory AppendLogs with the server's rules, and faults on demand, for shipper tests
(plus sample records and the stream/level mapping the tests compare with).

Per message, as the real server does: every message of a call is for one (run, attempt,
lease); entries are consecutive; entries at or below what is stored are ignored (a resend);
a first seq past stored+1 is a gap and fails the call with INVALID_ARGUMENT. The answer is
the highest seq up to which everything is stored. Limits the worker must respect (at most
1 MiB serialized and 1,000 entries per message) are checked, and a violation is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc

from batchyard.v1 import log_pb2, worker_service_pb2
from batchyard.worker.output.collector import Level, LogRecord, Stream
from batchyard.worker.server_api import LeaseLost

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_MESSAGE_ENTRIES = 1000

T0 = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
STREAMS = {
    Stream.STDOUT: log_pb2.LOG_STREAM_STDOUT,
    Stream.STDERR: log_pb2.LOG_STREAM_STDERR,
    Stream.SYSTEM: log_pb2.LOG_STREAM_SYSTEM,
}
LEVELS = {
    Level.DEBUG: log_pb2.LOG_LEVEL_DEBUG,
    Level.INFO: log_pb2.LOG_LEVEL_INFO,
    Level.WARNING: log_pb2.LOG_LEVEL_WARNING,
    Level.ERROR: log_pb2.LOG_LEVEL_ERROR,
}


def records(count: int, start: int = 1, text: str = "line {seq}") -> list[LogRecord]:
    streams = (Stream.STDOUT, Stream.STDERR, Stream.SYSTEM)
    levels = (Level.INFO, Level.WARNING, Level.DEBUG, Level.ERROR)
    return [
        LogRecord(
            seq,
            T0 + timedelta(microseconds=seq * 1001),
            streams[seq % 3],
            levels[seq % 4],
            text.format(seq=seq),
        )
        for seq in range(start, start + count)
    ]


def rpc_error(code: grpc.StatusCode, details: str = "injected") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None)


@dataclass
class Fault:
    """What goes wrong with one call."""

    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    after_messages: int = 0
    """Messages stored before the call breaks (a broken stream)."""
    lose_ack: bool = False
    """Store the whole call, then fail it anyway (the answer never arrives)."""


@dataclass
class FakeLogServer:
    stored: list[log_pb2.LogEntry] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    down: bool = False
    lease_lost: bool = False
    refuse: grpc.StatusCode | None = None
    calls: int = 0
    received: int = 0
    violations: list[str] = field(default_factory=list)
    fence: tuple[str, int, str] | None = None

    async def send(self, messages: Sequence[bytes], deadline: float) -> int:
        self.calls += 1
        requests = [worker_service_pb2.AppendLogsRequest.FromString(m) for m in messages]
        await asyncio.sleep(0)  # the job's output keeps coming while a call is in flight
        if self.lease_lost:
            raise LeaseLost("ABORTED: lease lost")
        if self.refuse is not None:
            raise rpc_error(self.refuse)
        if self.down:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "server down")
        fault = self.faults.pop(0) if self.faults else None
        if not requests:
            self.violations.append("a call without messages")
        previous_last: int | None = None
        for index, request in enumerate(requests):
            if fault is not None and not fault.lose_ack and index == fault.after_messages:
                raise rpc_error(fault.code, "stream broken")
            self._check(request, previous_last)
            entries = list(request.entries)
            self.received += len(entries)
            first = entries[0].seq
            if first > len(self.stored) + 1:
                raise rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "entries[0].seq: a gap")
            for entry in entries:
                if entry.seq == len(self.stored) + 1:
                    self.stored.append(entry)
            previous_last = entries[-1].seq
        if fault is not None and (fault.lose_ack or fault.after_messages >= len(requests)):
            raise rpc_error(fault.code, "answer lost")
        return len(self.stored)

    def _check(self, request: worker_service_pb2.AppendLogsRequest, previous: int | None) -> None:
        fence = (request.run, request.attempt, request.lease_id)
        if self.fence is None:
            self.fence = fence
        elif fence != self.fence:
            self.violations.append(f"fence changed: {fence} != {self.fence}")
        if request.ByteSize() > MAX_MESSAGE_BYTES:  # equals the size sent (canonical encoding)
            self.violations.append(f"a message of {request.ByteSize()} bytes")
        if len(request.entries) > MAX_MESSAGE_ENTRIES:
            self.violations.append(f"a message of {len(request.entries)} entries")
        if not request.entries:
            self.violations.append("a message without entries")
            return
        seqs = [entry.seq for entry in request.entries]
        if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
            self.violations.append(f"entries not consecutive: {seqs[:5]}…")
        if previous is not None and seqs[0] != previous + 1:
            self.violations.append(f"message starts at {seqs[0]} after {previous}")
