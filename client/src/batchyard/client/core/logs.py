"""What the log parts of both faces share: `LogReader`, whose `iter` and `follow` build
their requests here and leave only the reading to the face (`_pages`, `_follower`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from batchyard.client.core.requests import (
    Level,
    Position,
    Stream,
    get_logs_request,
    tail_logs_request,
)
from batchyard.client.core.streams import RECONNECT_TIMEOUT, OutageListener, log_outage
from batchyard.v1 import log_service_pb2 as pb

Entries = TypeVar("Entries")
Follower = TypeVar("Follower")


class LogReader(Generic[Entries, Follower]):
    """Read and follow run logs (`client.logs`).

    A run's log is ordered by attempt, then by `seq` within the attempt; a position
    (attempt, seq) names the last entry read, and every method can start after one.
    Filters: one `attempt` (0: all), a `min_level` (a LogLevel or a name such as
    "warning") and `streams` (LogStream values or "stdout", "stderr", "system"; empty
    for all). Errors are `batchyard.client.errors.BatchyardError` subclasses
    (NotFoundError for an unknown run); bad filters raise ValueError at the call.
    """

    def iter(
        self,
        run_id: str,
        *,
        after: Position | None = None,
        attempt: int = 0,
        min_level: Level | None = None,
        streams: Iterable[Stream] = (),
        page_size: int = 0,
    ) -> Entries:
        """Every entry stored now after `after`, in order, following page tokens (an
        iterator; async for the asyncio client). It does not wait for more: use
        `follow` for that."""
        request = get_logs_request(
            run_id,
            after=after,
            attempt=attempt,
            min_level=min_level,
            streams=streams,
            page_size=page_size,
        )
        return self._pages(request)

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
        on_outage: OutageListener | None = None,
    ) -> Follower:
        """The entries after `after` (or, with `only_new`, those added from now on),
        then live as the job prints them, until the run has ended and every entry was
        delivered.

        When the stream breaks (the server restarts or cannot be reached) it is
        reopened after the last position received, so no entry is missed or repeated;
        the pauses between tries grow from 0.2 s to 5 s, and after `reconnect_timeout`
        seconds of failing (default 5 min) the last UnavailableError is raised. With
        `only_new`, a break before the first entry arrived resumes with "only new"
        again. Meanwhile `on_outage` is told (None: a warning on the
        `batchyard.client` logger, "server unreachable, retrying (0:00:12)", then
        "server reachable again"). The returned iterator has `cancel()` and `position`.
        """
        request = tail_logs_request(
            run_id,
            after=after,
            only_new=only_new,
            attempt=attempt,
            min_level=min_level,
            streams=streams,
        )
        return self._follower(request, reconnect_timeout, on_outage or log_outage)

    def _pages(self, request: pb.GetLogsRequest) -> Entries:
        raise NotImplementedError

    def _follower(
        self,
        request: pb.TailLogsRequest,
        reconnect_timeout: float,
        on_outage: OutageListener | None = None,
    ) -> Follower:
        raise NotImplementedError

    @staticmethod
    def _page_request(run_id: str, page_size: int, page_token: str, **filters: Any) -> Any:
        """The GetLogs request of `page` (the filters of `iter`)."""
        return get_logs_request(run_id, page_size=page_size, page_token=page_token, **filters)
