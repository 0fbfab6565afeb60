"""A small synchronous client for LogService that raises typed errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeAlias

import grpc

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.describe import LEVELS as LEVELS
from batchyard.client.describe import STREAMS as STREAMS
from batchyard.client.errors import from_rpc_error
from batchyard.client.streams import RECONNECT_TIMEOUT, ResumableStream
from batchyard.v1 import log_pb2, log_service_pb2_grpc
from batchyard.v1 import log_service_pb2 as pb

LogEntry = log_pb2.LogEntry
LogPosition = log_pb2.LogPosition
LogLevel = log_pb2.LogLevel
LogStream = log_pb2.LogStream
GetLogsResponse = pb.GetLogsResponse

MAX_PAGE_SIZE = 10_000

# Levels and streams by name, as `log_level` and `log_stream` accept them ("warning").
Level: TypeAlias = "log_pb2.LogLevel.ValueType | str"
Stream: TypeAlias = "log_pb2.LogStream.ValueType | str"
Position: TypeAlias = "log_pb2.LogPosition | tuple[int, int]"


def log_level(level: Level | None) -> LogLevel.ValueType:
    """A level given as a LogLevel value or a name: "warning", "WARNING", "warn",
    "LOG_LEVEL_WARNING". None (or LOG_LEVEL_UNSPECIFIED) keeps every level. ValueError
    if unknown."""
    if level is None:
        return log_pb2.LOG_LEVEL_UNSPECIFIED
    if isinstance(level, str):
        name = level.strip().lower().removeprefix("log_level_")
        name = {"warn": "warning"}.get(name, name)
        if name not in LEVELS:
            raise ValueError(f"unknown log level {level!r}; choose from {', '.join(LEVELS)}")
        return LEVELS[name]
    if level != log_pb2.LOG_LEVEL_UNSPECIFIED and level not in LEVELS.values():
        raise ValueError(f"unknown log level {level!r}")
    return level


def log_stream(stream: Stream) -> LogStream.ValueType:
    """A stream given as a LogStream value or a name: "stderr", "STDERR",
    "LOG_STREAM_STDERR". ValueError if unknown."""
    if isinstance(stream, str):
        name = stream.strip().lower().removeprefix("log_stream_")
        if name not in STREAMS:
            raise ValueError(f"unknown log stream {stream!r}; choose from {', '.join(STREAMS)}")
        return STREAMS[name]
    if stream not in STREAMS.values():
        raise ValueError(f"unknown log stream {stream!r}")
    return stream


def log_position(after: Position | None) -> LogPosition:
    """A position given as a LogPosition or an (attempt, seq) pair; None is the start."""
    if after is None:
        return LogPosition()
    if isinstance(after, LogPosition):
        return after
    attempt, seq = after
    return LogPosition(attempt=attempt, seq=seq)


def _key(position: LogPosition | LogEntry) -> tuple[int, int]:
    return (position.attempt, position.seq)


class LogFollower(ResumableStream[pb.TailLogsResponse, LogEntry]):
    """The entries of a run's log, live (what `LogsClient.follow` returns).

    Iterate over it for the entries; it ends when the run has ended and every entry was
    delivered, or after `cancel()` (from any thread). `position` is where it has got
    to: pass it as `after` to a later `follow` or `iter` to go on from there.
    """

    def __init__(
        self,
        stub: log_service_pb2_grpc.LogServiceStub,
        request: pb.TailLogsRequest,
        *,
        reconnect_timeout: float,
    ) -> None:
        self._stub = stub
        self._request = request
        self.position = LogPosition()
        self.position.CopyFrom(request.after)
        self._received = False
        super().__init__(self._tail, self._entries, reconnect_timeout=reconnect_timeout)

    def _tail(self, timeout: float | None) -> grpc.CallIterator[pb.TailLogsResponse]:
        request = pb.TailLogsRequest()
        request.CopyFrom(self._request)
        if self._received:  # resume where the last stream stopped
            request.after.CopyFrom(self.position)
            request.only_new = False
        return self._stub.TailLogs(request, timeout=timeout)

    def _entries(self, response: pb.TailLogsResponse) -> Iterator[LogEntry]:
        self._received = True
        seen = _key(self.position)
        if _key(response.position) > seen:
            self.position = response.position
        for entry in response.entries:
            if _key(entry) > seen:  # never twice, whatever a server sends
                seen = _key(entry)
                yield entry


class LogsClient:
    """Read and follow run logs.

    A run's log is ordered by attempt, then by `seq` within the attempt; a position
    (attempt, seq) names the last entry read, and every method can start after one.
    Filters: one `attempt` (0: all), a `min_level` (a LogLevel or a name such as
    "warning") and `streams` (LogStream values or "stdout", "stderr", "system"; empty
    for all). Every method raises a `batchyard.client.errors.BatchyardError` subclass
    when the server says no or cannot be reached (NotFoundError for an unknown run);
    unary calls have a deadline of `timeout` seconds.

        with connection.channel() as ch:
            logs = LogsClient(ch)
            for entry in logs.follow(run_id, min_level="warning"):
                print(entry.seq, entry.message)
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = log_service_pb2_grpc.LogServiceStub(channel)
        self._timeout = timeout

    def page(
        self,
        run_id: str,
        *,
        after: Position | None = None,
        attempt: int = 0,
        min_level: Level | None = None,
        streams: Iterable[Stream] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> GetLogsResponse:
        """One page of stored entries after `after` (page_size 0: the server's default,
        1000; at most 10,000). A `page_token` (from `next_page_token`, empty when
        nothing more is stored now) works only with the filters of the call that
        returned it, and wins over `after`. `last_position` is where to go on from
        later; `run_finished` says whether entries may still be added.
        """
        request = pb.GetLogsRequest(
            run=run_id,
            attempt=attempt,
            after=log_position(after),
            page_size=page_size,
            page_token=page_token,
            min_level=log_level(min_level),
            streams=[log_stream(s) for s in streams],
        )
        try:
            return self._stub.GetLogs(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def iter(
        self,
        run_id: str,
        *,
        after: Position | None = None,
        attempt: int = 0,
        min_level: Level | None = None,
        streams: Iterable[Stream] = (),
        page_size: int = 0,
    ) -> Iterator[LogEntry]:
        """Every entry stored now after `after`, in order, following page tokens.

        It does not wait for more: use `follow` for that.
        """
        wanted = [log_stream(s) for s in streams]  # bad filters fail here, not on next()
        level = log_level(min_level)
        start = log_position(after)
        return self._pages(run_id, start, attempt, level, wanted, page_size)

    def _pages(
        self,
        run_id: str,
        after: LogPosition,
        attempt: int,
        min_level: LogLevel.ValueType,
        streams: list[LogStream.ValueType],
        page_size: int,
    ) -> Iterator[LogEntry]:
        token = ""
        while True:
            page = self.page(
                run_id,
                after=after,
                attempt=attempt,
                min_level=min_level,
                streams=streams,
                page_size=page_size,
                page_token=token,
            )
            yield from page.entries
            token = page.next_page_token
            if not token:
                return

    def follow(
        self,
        run_id: str,
        *,
        after: Position | None = None,
        only_new: bool = False,
        attempt: int = 0,
        min_level: Level | None = None,
        streams: Iterable[Stream] = (),
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> LogFollower:
        """The entries after `after` (or, with `only_new`, those added from now on),
        then live as the job prints them, until the run has ended and every entry was
        delivered.

        When the stream breaks (the server restarts or cannot be reached) it is
        reopened after the last position received, so no entry is missed or repeated;
        the pauses between tries grow from 0.2 s to 5 s, and after `reconnect_timeout`
        seconds of failing (default 5 min) the last UnavailableError is raised. With
        `only_new`, a break before the first entry arrived resumes with "only new"
        again. The returned iterator has `cancel()` and `position`.
        """
        request = pb.TailLogsRequest(
            run=run_id,
            attempt=attempt,
            after=log_position(after),
            only_new=only_new,
            min_level=log_level(min_level),
            streams=[log_stream(s) for s in streams],
        )
        return LogFollower(self._stub, request, reconnect_timeout=reconnect_timeout)
