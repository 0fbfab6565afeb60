"""AppendLogs: store a worker's batches of log entries, each seq exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from batchyard.server.api.fences import fence_from
from batchyard.server.db import logs as store
from batchyard.server.db.pool import Pool
from batchyard.server.domain.attempts import Fence
from batchyard.server.domain.errors import FieldViolation, InvalidArgument, LeaseLost
from batchyard.v1 import log_pb2, log_service_pb2
from batchyard.v1 import worker_service_pb2 as pb

MAX_ENTRIES = 10_000
MAX_MESSAGE_CHARS = 64 * 1024
STREAMS = {log_pb2.LOG_STREAM_STDOUT, log_pb2.LOG_STREAM_STDERR, log_pb2.LOG_STREAM_SYSTEM}
LEVELS = {
    log_pb2.LOG_LEVEL_DEBUG,
    log_pb2.LOG_LEVEL_INFO,
    log_pb2.LOG_LEVEL_WARNING,
    log_pb2.LOG_LEVEL_ERROR,
}


def check_entries(entries: Sequence[log_pb2.LogEntry]) -> tuple[int, int]:
    """The batch's first and last seq; the entries must be consecutive and well formed."""
    items = list(entries)
    if len(items) > MAX_ENTRIES:
        raise InvalidArgument([FieldViolation("entries", f"at most {MAX_ENTRIES} per message")])
    first = items[0].seq
    if first < 1:
        raise InvalidArgument([FieldViolation("entries[0].seq", "seq starts at 1")])
    for i, entry in enumerate(items):
        if entry.seq != first + i:
            raise InvalidArgument([FieldViolation(f"entries[{i}].seq", f"expected {first + i}")])
        if entry.stream not in STREAMS or entry.level not in LEVELS:
            field = "stream" if entry.stream not in STREAMS else "level"
            raise InvalidArgument([FieldViolation(f"entries[{i}].{field}", "required")])
        if len(entry.message) > MAX_MESSAGE_CHARS:
            raise InvalidArgument([FieldViolation(f"entries[{i}].message", "over 64 KiB")])
    return first, first + len(items) - 1


async def store_batch(pool: Pool, fence: Fence, request: pb.AppendLogsRequest) -> int:
    """Store one message's entries; returns how far the attempt's log is stored now."""
    first, last = check_entries(request.entries)
    entries = list(request.entries)
    while True:
        data = log_service_pb2.TailLogsResponse(entries=entries).SerializeToString()
        done = await store.append(pool, fence, first, last, data)
        if not done.live:
            raise LeaseLost(f"lease on run {fence.run} attempt {fence.attempt} is gone")
        if done.stored or last <= done.current:
            return max(last, done.current)
        if first > done.current + 1:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "entries[0].seq",
                        f"expected {done.current + 1}: the attempt's log is stored up to "
                        f"{done.current} (resend from the last acknowledged seq)",
                    )
                ]
            )
        # A resend overlapping what is stored: keep only what is new.
        entries = entries[done.current + 1 - first :]
        first = done.current + 1


async def append_logs(
    pool: Pool, requests: AsyncIterator[pb.AppendLogsRequest]
) -> tuple[Fence | None, int]:
    """Store every message of one call (all for one run, attempt and lease)."""
    fence: Fence | None = None
    acked = 0
    async for request in requests:
        this = fence_from(request.run, request.attempt, request.lease_id)
        if fence is None:
            fence = this
        elif this != fence:
            raise InvalidArgument(
                [FieldViolation("run", "every message of a call is for one run, attempt and lease")]
            )
        if len(request.entries):
            acked = await store_batch(pool, fence, request)
    return fence, acked
