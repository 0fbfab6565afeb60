"""Reading a run's log in order from a position, with level and stream filters."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from batchyard.server.db import logs as store
from batchyard.server.db.pool import Pool
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.v1 import log_pb2, log_service_pb2

CHUNKS_PER_QUERY = 32
LEVELS = (
    log_pb2.LOG_LEVEL_DEBUG,
    log_pb2.LOG_LEVEL_INFO,
    log_pb2.LOG_LEVEL_WARNING,
    log_pb2.LOG_LEVEL_ERROR,
)
STREAMS = (log_pb2.LOG_STREAM_STDOUT, log_pb2.LOG_STREAM_STDERR, log_pb2.LOG_STREAM_SYSTEM)

Position = tuple[int, int]


@dataclass(frozen=True)
class LogFilter:
    attempt: int = 0
    min_level: int = 0
    streams: frozenset[int] = frozenset()

    def keeps(self, entry: log_pb2.LogEntry) -> bool:
        return entry.level >= self.min_level and (not self.streams or entry.stream in self.streams)


def log_filter(attempt: int, min_level: int, streams: list[int]) -> LogFilter:
    violations = []
    if attempt < 0:
        violations.append(FieldViolation("attempt", "must not be negative"))
    if min_level and min_level not in LEVELS:
        violations.append(FieldViolation("min_level", "unknown level"))
    for i, stream in enumerate(streams):
        if stream not in STREAMS:
            violations.append(FieldViolation(f"streams[{i}]", "unknown stream"))
    if violations:
        raise InvalidArgument(violations)
    return LogFilter(attempt, min_level, frozenset(streams))


def position_of(pos: log_pb2.LogPosition, field: str) -> Position:
    if pos.attempt < 0 or pos.seq < 0:
        raise InvalidArgument([FieldViolation(field, "attempt and seq must not be negative")])
    return (pos.attempt, pos.seq)


@dataclass
class Page:
    entries: list[log_pb2.LogEntry]
    position: Position
    """The position of the last entry examined (kept or filtered out)."""
    full: bool
    """The page stopped at its size: more entries may be stored."""


async def read_page(pool: Pool, run: UUID, after: Position, wanted: LogFilter, size: int) -> Page:
    """Up to `size` entries after `after`, in log order (attempt, then seq)."""
    run_id = str(run)
    out: list[log_pb2.LogEntry] = []
    position = after
    while True:
        chunks = await store.chunks_after(pool, run, wanted.attempt, position, CHUNKS_PER_QUERY)
        for chunk in chunks:
            batch = log_service_pb2.TailLogsResponse.FromString(chunk.entries).entries
            start = position[1] + 1 - chunk.first_seq if chunk.attempt == position[0] else 0
            for entry in batch[max(0, start) :]:
                if wanted.keeps(entry):
                    kept = log_pb2.LogEntry()
                    kept.CopyFrom(entry)
                    kept.run, kept.attempt = run_id, chunk.attempt
                    out.append(kept)
                position = (chunk.attempt, entry.seq)
                if len(out) >= size:
                    return Page(out, position, full=True)
        if len(chunks) < CHUNKS_PER_QUERY:
            return Page(out, position, full=False)
