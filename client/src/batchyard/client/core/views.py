"""What `Run` and `AsyncRun` share: the read-only view of a run's last state seen
(`RunView`), and what waiting for a run prints and raises (`WaitReport`, `run_error`).

Both handles keep the last state they have seen (`state`, a `batchyard.v1.Run`
message); the attributes here read it and never call the server.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TextIO, TypeVar

from batchyard.client.core.logs import LogReader
from batchyard.client.core.requests import Level, Stream
from batchyard.client.core.streams import (
    RECONNECT_TIMEOUT,
    OutageListener,
    log_outage,
    outage_text,
)
from batchyard.client.describe import (
    Reason,
    Status,
    definition_ref,
    elapsed,
    entry_line,
    one_line,
    outcome_lines,
    reason_text,
    state_text,
)
from batchyard.client.display import run_html
from batchyard.client.errors import RunCancelledError, RunError, RunFailedError, WaitTimeoutError
from batchyard.v1 import log_pb2, run_pb2

Follower = TypeVar("Follower")

# How many log lines a failed run's error shows (warning and above, else any).
LOG_TAIL_LINES = 20

FINISHED: frozenset[run_pb2.RunStatus.ValueType] = frozenset(
    {run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED}
)


def is_finished(run: run_pb2.Run) -> bool:
    """Whether the run is SUCCEEDED, FAILED or CANCELLED (nothing will change it again)."""
    return run.status in FINISHED


class RunView(Generic[Follower]):
    """The attributes of a run handle that read the last state seen (no call), and
    `follow`, which starts following its log."""

    def __init__(
        self, logs: LogReader[Any, Follower], state: run_pb2.Run, *, deduplicated: bool = False
    ) -> None:
        self._log_reader = logs
        self._state = state
        self.deduplicated = deduplicated
        """Whether `submit` found its request id used before (this is that run)."""

    @property
    def id(self) -> str:
        """The run's uuid."""
        return self._state.uuid

    @property
    def state(self) -> run_pb2.Run:
        """The last state seen: the `batchyard.v1.Run` message (status, reason, config,
        attempts, progress, times)."""
        return self._state

    @property
    def definition(self) -> str:
        """'name@version' of the definition it pins, or '(ad hoc)'."""
        return definition_ref(self._state)

    @property
    def progress(self) -> int:
        """The progress the job last reported, 0-100 (last state seen)."""
        return self._state.progress

    @property
    def reason(self) -> Reason:
        """Why it is in its status, e.g. Reason.NON_ZERO_EXIT_CODE (last state seen)."""
        return Reason.of(self._state.reason)

    @property
    def message(self) -> str:
        """What the server said about its last change, e.g. a cancel's reason."""
        return self._state.message

    @property
    def attempts(self) -> list[run_pb2.Attempt]:
        """Its attempts, oldest first (last state seen)."""
        return list(self._state.attempts)

    @property
    def finished(self) -> bool:
        """Whether the last state seen is SUCCEEDED, FAILED or CANCELLED."""
        return Status.of(self._state.status).finished

    def follow(
        self,
        *,
        level: Level | None = None,
        attempt: int = 0,
        streams: Iterable[Stream] = (),
        only_new: bool = False,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        on_outage: OutageListener | None = None,
    ) -> Follower:
        """Its log entries as they come, until the run has ended and every entry was
        delivered: what is stored first (or, with `only_new`, only what comes from now
        on), then live (``async for`` with the asyncio client). A broken connection is
        resumed after the last entry received, with no entry missed or repeated; while
        the server cannot be reached `on_outage` is told (None: a warning on the
        `batchyard.client` logger). The follower has `cancel()` and `position`."""
        return self._log_reader.follow(
            self.id,
            only_new=only_new,
            attempt=attempt,
            min_level=level,
            streams=streams,
            reconnect_timeout=reconnect_timeout,
            on_outage=on_outage,
        )

    def _last_attempt(self) -> int:
        """The number of the last attempt seen (0: none yet)."""
        return self._state.attempts[-1].number if self._state.attempts else 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, {state_text(self._state)!r})"

    def _repr_html_(self) -> str:
        return run_html(self._state)


StateCallback = Callable[[run_pb2.Run], None]


class WaitReport:
    """What one `wait` shows and calls. With `show_progress`, a line on `out` (default
    stdout) whenever the run's state, as people read it, changes:

        0:00:36 Run '0b6f3c1e-…': running (attempt 1, 40%)

    and, for a run that did not succeed, how it ended and the tail of its log; and
    `on_state` is called with every state seen."""

    def __init__(
        self,
        run_id: str,
        *,
        show_progress: bool,
        out: TextIO | None,
        on_state: StateCallback | None,
    ) -> None:
        self._out = (out or sys.stdout) if show_progress else None
        self._run_id = run_id
        self._on_state = on_state
        self._start = time.monotonic()
        self._last = ""

    def _say(self, *lines: str) -> None:
        if self._out is not None:
            print(*lines, sep="\n", file=self._out, flush=True)

    def update(self, state: run_pb2.Run) -> None:
        """A new state of the run: said if it reads differently from the last one."""
        text = state_text(state)
        if text != self._last:
            self._last = text
            took = elapsed(time.monotonic() - self._start)
            self._say(f"{took} Run {self._run_id!r}: {text}")
        if self._on_state is not None:
            self._on_state(state)

    def outage(self, seconds: float | None) -> None:
        """The server cannot be reached (for `seconds`), or is back (None): said with
        `show_progress`, else a warning on the `batchyard.client` logger."""
        if self._out is None:
            log_outage(seconds)
            return
        took = elapsed(time.monotonic() - self._start)
        self._say(f"{took} Run {self._run_id!r}: {outage_text(seconds)}")

    def timed_out(self, error: WaitTimeoutError) -> WaitTimeoutError:
        """The wait gave up (the run goes on): said, and returned to be raised."""
        self._say(
            f"Stopped waiting after {error.timeout:g} s: run {self._run_id!r} is "
            f"{state_text(error.run)} and goes on"
        )
        return error

    def failed(self, state: run_pb2.Run, log_tail: Iterable[log_pb2.LogEntry]) -> RunError:
        """The run did not succeed: how it ended and the last lines of its log said, and
        the error to raise returned."""
        error = run_error(state, log_tail)
        tail = [f"  {entry_line(entry)}" for entry in error.log_tail]
        self._say(*outcome_lines(state), *(["Last lines of the log:", *tail] if tail else []))
        return error


def failure_message(run: run_pb2.Run) -> str:
    """'run X failed (non-zero exit code): attempt 2 on w0, exit code 3: boom'."""
    if run.status == run_pb2.RUN_STATUS_CANCELLED:
        message = f"run {run.uuid} was cancelled"
        return message + (f": {one_line(run.message)}" if run.message else "")
    reason = reason_text(run.reason)
    message = f"run {run.uuid} failed" + (f" ({reason})" if reason else "")
    if run.attempts:
        last = run.attempts[-1]
        where = f"attempt {last.number}" + (f" on {last.worker_id}" if last.worker_id else "")
        if last.HasField("exit_code"):
            where += f", exit code {last.exit_code}"
        text = one_line(last.message or run.message)
        return f"{message}: {where}" + (f": {text}" if text else "")
    return message + (f": {one_line(run.message)}" if run.message else "")


def run_error(run: run_pb2.Run, log_tail: Iterable[log_pb2.LogEntry] = ()) -> RunError:
    """RunCancelledError for a cancelled run, else RunFailedError."""
    cls = RunCancelledError if run.status == run_pb2.RUN_STATUS_CANCELLED else RunFailedError
    return cls(failure_message(run), run, list(log_tail))


def tail_of(entries: Iterable[log_pb2.LogEntry], lines: int) -> list[log_pb2.LogEntry]:
    """The last `lines` entries."""
    return list(deque(entries, maxlen=lines)) if lines > 0 else []
