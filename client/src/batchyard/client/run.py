"""`Run`: a handle on one run — its state, waiting for its end, cancel, logs, results.

`client.runs.submit(...)` and `client.run(run_id)` return one. It keeps the last state
it has seen (`run.state`, a `batchyard.v1.Run` message) and asks the server again on
`status()`, `refresh()` and `wait()`.

    run = client.runs.submit("nightly-etl", args=["--day", "2024-05-01"])
    run.wait()                       # 0:00:36 Run '…': running (attempt 1, 40%)
    run.results().download_files("out")
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TextIO

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
from batchyard.client.display import ItemList, run_html
from batchyard.client.errors import RunCancelledError, RunError, RunFailedError
from batchyard.client.logs import Level, LogFollower, LogsClient, Position, Stream
from batchyard.client.results import RunResults
from batchyard.client.runs import RunsClient, WaitTimeoutError
from batchyard.client.streams import RECONNECT_TIMEOUT
from batchyard.v1 import log_pb2, run_pb2

# How many log lines a failed run's error shows (warning and above, else any).
LOG_TAIL_LINES = 20


class ProgressPrinter:
    """Prints a line whenever a waited-for run's state, as people read it, changes:

        0:00:36 Run '0b6f3c1e-…': running (attempt 1, 40%)

    and, for a run that did not succeed, how it ended and the tail of its log."""

    def __init__(self, out: TextIO, run_id: str) -> None:
        self._out = out
        self._run_id = run_id
        self._start = time.monotonic()
        self._last = ""

    def update(self, run: run_pb2.Run) -> None:
        """A state of the run: printed if it reads differently from the last one."""
        text = state_text(run)
        if text != self._last:
            self._last = text
            took = elapsed(time.monotonic() - self._start)
            print(f"{took} Run {self._run_id!r}: {text}", file=self._out, flush=True)

    def report(self, error: RunError) -> None:
        """How the run ended, then the last lines of its log."""
        for line in outcome_lines(error.run):
            print(line, file=self._out)
        if error.log_tail:
            print("Last lines of the log:", file=self._out)
            for entry in error.log_tail:
                print("  " + entry_line(entry), file=self._out)
        self._out.flush()

    def timed_out(self, error: WaitTimeoutError) -> None:
        """The wait gave up; the run goes on."""
        print(
            f"Stopped waiting after {error.timeout:g} s: run {self._run_id!r} is "
            f"{state_text(error.run)} and goes on",
            file=self._out,
            flush=True,
        )


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


class Run:
    """A handle on one run (what `client.runs.submit` and `client.run` return).

    Attributes that read the last state seen (no call): `id`, `state`, `definition`,
    `progress`, `reason`, `message`, `attempts`, `deduplicated`. Methods that ask the
    server: `status`, `refresh`, `wait`, `watch`, `cancel`, `delete`, `logs`, `follow`,
    `log_tail`, `results`. Errors are `batchyard.client.BatchyardError` subclasses.
    """

    def __init__(
        self,
        runs: RunsClient,
        logs: LogsClient,
        state: run_pb2.Run,
        *,
        deduplicated: bool = False,
    ) -> None:
        self._runs = runs
        self._logs = logs
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

    def status(self) -> Status:
        """Its status now (asks the server), e.g. Status.RUNNING; compares to "running"."""
        return Status.of(self.refresh().state.status)

    def refresh(self) -> Run:
        """Read its state again from the server; returns this handle."""
        self._state = self._runs.get(self.id)
        return self

    def watch(self, *, reconnect_timeout: float = RECONNECT_TIMEOUT) -> Iterator[run_pb2.Run]:
        """Each new state (a `batchyard.v1.Run`) as it changes, until the run has ended;
        resumes after a broken connection (see `RunsClient.watch`)."""
        for state in self._runs.watch(self.id, reconnect_timeout=reconnect_timeout):
            self._state = state
            yield state

    def wait(
        self,
        timeout: float | None = None,
        *,
        show_progress: bool = True,
        raise_on_failure: bool = True,
        log_lines: int = LOG_TAIL_LINES,
        out: TextIO | None = None,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> Run:
        """Wait until the run has ended, and return this handle.

        With `show_progress` a line is printed (on `out`, default stdout) whenever its
        state changes: ``0:00:36 Run '…': running (attempt 1, 40%)``. A run that FAILED
        raises RunFailedError, a CANCELLED one RunCancelledError (both RunError: `.run`
        is the final state, `.log_tail` the last `log_lines` lines of the last
        attempt's log, warning and above, else any); with `show_progress` how it ended
        and that tail are printed first. `raise_on_failure=False` returns instead.
        After `timeout` seconds (None: no limit) WaitTimeoutError; the run goes on.
        """
        printer = ProgressPrinter(out or sys.stdout, self.id) if show_progress else None

        def seen(state: run_pb2.Run) -> None:
            self._state = state
            if printer is not None:
                printer.update(state)

        try:
            self._runs.wait(
                self.id, timeout=timeout, poll=seen, reconnect_timeout=reconnect_timeout
            )
        except WaitTimeoutError as exc:
            if printer is not None:
                printer.timed_out(exc)
            raise
        status = self._state.status
        if status == run_pb2.RUN_STATUS_SUCCEEDED or not raise_on_failure:
            return self
        tail = self.failure_tail(log_lines) if status == run_pb2.RUN_STATUS_FAILED else []
        error = run_error(self._state, tail)
        if printer is not None:
            printer.report(error)
        raise error

    def cancel(self, reason: str = "") -> Run:
        """Cancel it: a PENDING run is CANCELLED at once, a RUNNING one is stopped by
        its worker (`state.cancel_requested` until then). WrongStateError when it has
        already ended. Returns this handle."""
        self._state = self._runs.cancel(self.id, reason)
        return self

    def delete(self) -> None:
        """Delete the finished run with its logs and results (WrongStateError if it
        has not ended)."""
        self._runs.delete(self.id)

    def logs(
        self,
        *,
        level: Level | None = None,
        attempt: int = 0,
        streams: Iterable[Stream] = (),
        after: Position | None = None,
    ) -> ItemList[log_pb2.LogEntry]:
        """The entries of its log stored now, oldest first: at `level` and above
        ("warning"), of one `attempt` (0: all), of some `streams` ("stderr"), after a
        position (attempt, seq). Shows as a table in Jupyter."""
        return ItemList(
            self._logs.iter(self.id, after=after, attempt=attempt, min_level=level, streams=streams)
        )

    def follow(
        self,
        *,
        level: Level | None = None,
        attempt: int = 0,
        streams: Iterable[Stream] = (),
        only_new: bool = False,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> LogFollower:
        """Its log entries as they come, until the run has ended and every entry was
        delivered: what is stored first (or, with `only_new`, only what comes from now
        on), then live. A broken connection is resumed after the last entry received,
        with no entry missed or repeated. The iterator has `cancel()` and `position`."""
        return self._logs.follow(
            self.id,
            only_new=only_new,
            attempt=attempt,
            min_level=level,
            streams=streams,
            reconnect_timeout=reconnect_timeout,
        )

    def log_tail(
        self, lines: int = LOG_TAIL_LINES, *, level: Level | None = None, attempt: int = 0
    ) -> ItemList[log_pb2.LogEntry]:
        """The last `lines` entries stored now (at `level` and above; of `attempt`, 0:
        all)."""
        found = self._logs.iter(self.id, attempt=attempt, min_level=level)
        return ItemList(tail_of(found, lines))

    def failure_tail(self, lines: int = LOG_TAIL_LINES) -> list[log_pb2.LogEntry]:
        """What `wait` shows of a failed run: the last lines of the last attempt's log
        at warning and above, or at any level when it has none."""
        attempt = self._state.attempts[-1].number if self._state.attempts else 0
        tail = self.log_tail(lines, level="warning", attempt=attempt)
        return tail or self.log_tail(lines, attempt=attempt)

    def results(self) -> RunResults:
        """Its result files (listed now), with `download_files(dir)` and
        `download_file(path, name)`."""
        return self._runs.results(self.id)

    def __repr__(self) -> str:
        return f"Run({self.id!r}, {state_text(self._state)!r})"

    def _repr_html_(self) -> str:
        return run_html(self._state)
