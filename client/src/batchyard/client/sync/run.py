"""`Run`: a handle on one run — its state, waiting for its end, cancel, logs, results.

`client.runs.submit(...)` and `client.run(run_id)` return one. It keeps the last state
it has seen (`run.state`, a `batchyard.v1.Run` message) and asks the server again on
`status()`, `refresh()` and `wait()`.

    run = client.runs.submit("nightly-etl", args=["--day", "2024-05-01"])
    run.wait()                       # 0:00:36 Run '…': running (attempt 1, 40%)
    run.results().download_files("out")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from batchyard.client.core.requests import Level, Position, Stream
from batchyard.client.core.streams import RECONNECT_TIMEOUT, OutageListener
from batchyard.client.core.views import LOG_TAIL_LINES, RunView, WaitReport, tail_of
from batchyard.client.describe import Status
from batchyard.client.display import ItemList
from batchyard.client.errors import WaitTimeoutError
from batchyard.client.sync.logs import LogsClient
from batchyard.client.sync.results import RunResults
from batchyard.client.sync.runs import RunsClient
from batchyard.client.sync.streams import LogFollower
from batchyard.v1 import log_pb2, run_pb2


class Run(RunView[LogFollower]):
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
        super().__init__(logs, state, deduplicated=deduplicated)
        self._runs = runs
        self._logs = logs

    def status(self) -> Status:
        """Its status now (asks the server), e.g. Status.RUNNING; compares to "running"."""
        return Status.of(self.refresh().state.status)

    def children(self) -> list[Run]:
        """The children of this array run, by index (empty for other runs)."""
        found = self._runs.iter(parent=self.id, page_size=1000)
        kids = [Run(self._runs, self._logs, state) for state in found]
        return sorted(kids, key=lambda r: r.state.array_index)

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
        on_state: Callable[[run_pb2.Run], None] | None = None,
        on_outage: OutageListener | None = None,
    ) -> Run:
        """Wait until the run has ended, and return this handle.

        With `show_progress` a line is printed (on `out`, default stdout) whenever its
        state changes: ``0:00:36 Run '…': running (attempt 1, 40%)``. A run that FAILED
        raises RunFailedError, a CANCELLED one RunCancelledError (both RunError: `.run`
        is the final state, `.log_tail` the last `log_lines` lines of the last
        attempt's log, warning and above, else any); with `show_progress` how it ended
        and that tail are printed first. `raise_on_failure=False` returns instead.
        After `timeout` seconds (None: no limit) WaitTimeoutError; the run goes on.
        `on_state` is called with every state seen, the first being the one when the
        wait starts. While the server cannot be reached (also when the wait starts) it
        waits up to `reconnect_timeout` seconds of failing, saying so: "server
        unreachable, retrying (0:00:12)" then "server reachable again", with
        `show_progress` on `out`, else as warnings on the `batchyard.client` logger, or
        to `on_outage` (seconds unreachable so far; None once back) when given.
        """
        report = WaitReport(self.id, show_progress=show_progress, out=out, on_state=on_state)

        def seen(state: run_pb2.Run) -> None:
            self._state = state
            report.update(state)

        try:
            self._runs.wait(
                self.id,
                timeout=timeout,
                poll=seen,
                reconnect_timeout=reconnect_timeout,
                on_outage=on_outage or report.outage,
            )
        except WaitTimeoutError as exc:
            raise report.timed_out(exc) from None
        status = self._state.status
        if status == run_pb2.RUN_STATUS_SUCCEEDED or not raise_on_failure:
            return self
        tail = self.failure_tail(log_lines) if status == run_pb2.RUN_STATUS_FAILED else []
        raise report.failed(self._state, tail)

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
        attempt = self._last_attempt()
        tail = self.log_tail(lines, level="warning", attempt=attempt)
        return tail or self.log_tail(lines, attempt=attempt)

    def results(self) -> RunResults:
        """Its result files (listed now), with `download_files(dir)` and
        `download_file(path, name)`."""
        return self._runs.results(self.id)
