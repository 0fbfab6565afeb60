"""Server streams that survive a broken connection, the part both faces share: which
failures reopen a stream, how long to pause before reopening it (`Outage`), and where
each stream resumes from (`RevisionCursor` for WatchRun, `LogCursor` for TailLogs).

TailLogs and WatchRun both end by themselves once the run has ended, and both resume
from what the reader saw last (a log position, a run revision). When one breaks (the
server restarts, a load balancer drops it, the network blinks), it is opened again from
there after a pause: 0.2 s, doubling up to 5 s. The reader gives up with the last
`UnavailableError` after `reconnect_timeout` seconds of failing continuously.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import grpc

from batchyard.client.errors import BatchyardError, DeadlineExceededError, UnavailableError
from batchyard.v1 import log_pb2, log_service_pb2, run_pb2, run_service_pb2

# Reopening a broken stream: the first pause, doubling up to the longest.
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0
# How long a stream may keep failing before the reader gives up (5 min).
RECONNECT_TIMEOUT = 300.0
# A stream that stayed open this long before it broke had been connected (a call to a
# server that cannot be reached fails sooner: gRPC gives up connecting after 20 s), so
# the failure after it starts a new outage rather than prolonging the previous one.
SETTLED_SECONDS = 30.0

# What a broken HTTP/2 stream looks like when the server did not end the call itself.
_BROKEN_STREAM_DETAILS = ("RST_STREAM", "Stream removed", "Socket closed")


def is_broken_stream(error: BatchyardError) -> bool:
    """Whether a stream that failed with `error` may be reopened: the server could not
    be reached or went away (UNAVAILABLE), or the stream was cut under the call."""
    if isinstance(error, DeadlineExceededError):
        return False
    if isinstance(error, UnavailableError) or error.code == grpc.StatusCode.CANCELLED:
        return True
    if error.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return any(text in error.message for text in _BROKEN_STREAM_DETAILS)
    return False


class Outage:
    """The reconnecting state of one stream reader: when it started failing and the
    next pause. `first_pause` is the pause after a first failure."""

    def __init__(self, reconnect_timeout: float, first_pause: float = FIRST_RETRY_SECONDS):
        self._timeout = reconnect_timeout
        self._first = first_pause
        self._since: float | None = None
        self.pause = first_pause
        """The pause before the next reopening."""

    def connected(self) -> bool:
        """The stream works (again): whether it was failing until now."""
        was_failing = self._since is not None
        self._since, self.pause = None, self._first
        return was_failing

    @property
    def failing_for(self) -> float | None:
        """Seconds since the stream started failing (None: it is not failing)."""
        return None if self._since is None else time.monotonic() - self._since

    def broke(self, error: BatchyardError, opened: float) -> float:
        """The stream opened at `opened` (monotonic) failed with `error`: raises it
        unless it may be reopened; returns the pause before reopening."""
        if not is_broken_stream(error):
            raise error
        now = time.monotonic()
        if self._since is None or now - opened >= SETTLED_SECONDS:
            self._since, self.pause = now, self._first  # a new outage
        if now - self._since >= self._timeout:
            raise error
        return self.pause

    def waited(self) -> None:
        """The pause was spent: the next one is twice as long (up to 5 s)."""
        self.pause = min(self.pause * 2, MAX_RETRY_SECONDS)


OutageListener = Callable[[float | None], None]
"""Told while a stream (or the first call of a wait) cannot reach the server: the seconds
it has been failing after each failed try, then None once it is back."""


def clock(seconds: float) -> str:
    """'0:00:12'."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def outage_text(seconds: float | None, since: float | None = None) -> str:
    """What a follower says: 'server unreachable, retrying (0:00:12)', or once it is
    back 'server reachable again (unreachable for 0:00:15)'."""
    if seconds is not None:
        return f"server unreachable, retrying ({clock(seconds)})"
    return "server reachable again" + (
        "" if since is None else f" (unreachable for {clock(since)})"
    )


QUIET_SECONDS = 1.0
"""A break shorter than this (a stream cut and reopened at once, a quick restart) is not
worth telling: the reader resumes where it was."""


class OutageTeller:
    """Tells an OutageListener about one reader's outages: once they last QUIET_SECONDS,
    then after each failed try, and once back (only if it told of the outage)."""

    def __init__(self, listener: OutageListener | None) -> None:
        self._listener = listener
        self._told = False

    def failing(self, seconds: float | None) -> None:
        if self._listener is not None and seconds is not None and seconds >= QUIET_SECONDS:
            self._told = True
            self._listener(seconds)

    def back(self) -> None:
        if self._listener is not None and self._told:
            self._told = False
            self._listener(None)


def log_outage(seconds: float | None) -> None:
    """The SDK's default OutageListener: a warning on the `batchyard.client` logger
    (shown on stderr when the program configured no logging)."""
    import logging

    logging.getLogger("batchyard.client").warning(outage_text(seconds))


class RevisionCursor:
    """Where a WatchRun stream has got to: `revision`, the last revision seen."""

    def __init__(self, run_id: str, after_revision: int) -> None:
        self.run_id = run_id
        self.revision = after_revision

    def request(self) -> run_service_pb2.WatchRunRequest:
        """The request that goes on after the last revision seen."""
        return run_service_pb2.WatchRunRequest(run=self.run_id, after_revision=self.revision)

    def states(self, response: run_service_pb2.WatchRunResponse) -> Iterator[run_pb2.Run]:
        """The new state in a response, if it is new (never twice, whatever a server
        sends)."""
        if response.run.revision > self.revision:
            self.revision = response.run.revision
            yield response.run


def _key(position: log_pb2.LogPosition | log_pb2.LogEntry) -> tuple[int, int]:
    return (position.attempt, position.seq)


class LogCursor:
    """Where a TailLogs stream has got to: `position`, the last (attempt, seq) received."""

    def __init__(self, request: log_service_pb2.TailLogsRequest) -> None:
        self._request = request
        self.position = log_pb2.LogPosition()
        self.position.CopyFrom(request.after)
        self._received = False

    def request(self) -> log_service_pb2.TailLogsRequest:
        """The first request, or after a break the one resuming where it stopped."""
        request = log_service_pb2.TailLogsRequest()
        request.CopyFrom(self._request)
        if self._received:
            request.after.CopyFrom(self.position)
            request.only_new = False
        return request

    def entries(self, response: log_service_pb2.TailLogsResponse) -> Iterator[log_pb2.LogEntry]:
        """The entries of a response not delivered yet, in order."""
        self._received = True
        seen = _key(self.position)
        if _key(response.position) > seen:
            self.position = response.position
        for entry in response.entries:
            if _key(entry) > seen:  # never twice, whatever a server sends
                seen = _key(entry)
                yield entry
