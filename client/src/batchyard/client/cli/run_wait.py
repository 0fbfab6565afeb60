"""Following a run to its end (`runs submit --wait`, `runs watch`): its state on stderr,
its log on stdout with --follow, then how it ended; the exit code tells the outcome.

On a terminal the state is one live line, rewritten in place, with a progress bar:

    0:00:36 Run <uuid>: running (attempt 1, 40%) [########------------]

Elsewhere (a file, a pipe, a CI log) it is one plain line per change of state.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Protocol, TextIO

from batchyard.client.cli.failures import (
    EXIT_CANCELLED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WAIT_TIMEOUT,
)
from batchyard.client.cli.log_views import entry_line, is_terminal, wants_colour
from batchyard.client.cli.render import duration, table
from batchyard.client.cli.run_views import (
    attempt_state,
    elapsed,
    outcome_lines,
    paint_status,
    run_output,
    state_text,
)
from batchyard.client.core.streams import OutageListener, outage_text
from batchyard.client.describe import one_line, size_text
from batchyard.client.errors import BatchyardError, WaitTimeoutError
from batchyard.client.sync import LogFollower, Run
from batchyard.v1 import run_pb2

BAR_WIDTH = 20
OUTAGE_LINE_SECONDS = 10.0
"""Off a terminal, how often 'server unreachable, retrying (…)' is repeated."""
# The live line is redrawn this often, so its clock moves while nothing else does.
TICK_SECONDS = 1.0

EXIT_CODE_BY_STATUS = {
    run_pb2.RUN_STATUS_SUCCEEDED: EXIT_OK,
    run_pb2.RUN_STATUS_FAILED: EXIT_RUN_FAILED,
    run_pb2.RUN_STATUS_CANCELLED: EXIT_CANCELLED,
}


def exit_code(run: run_pb2.Run) -> int:
    """0 succeeded, 1 failed, 4 cancelled (1 for anything else)."""
    return EXIT_CODE_BY_STATUS.get(run.status, EXIT_RUN_FAILED)


def progress_bar(percent: int, width: int = BAR_WIDTH) -> str:
    """'[########------------]' for 40%."""
    done = round(min(max(percent, 0), 100) * width / 100)
    return "[" + "#" * done + "-" * (width - done) + "]"


class StateDisplay(Protocol):
    """Shows a run's state while it is followed, and log lines alongside it."""

    def update(self, run: run_pb2.Run) -> None:
        """A new state of the run."""

    def print_line(self, text: str, out: TextIO) -> None:
        """Print a line (of the log) on `out`, keeping the state display intact."""

    def outage(self, seconds: float | None) -> None:
        """The server has been unreachable for `seconds` (None: it is back)."""

    def close(self) -> None:
        """Done: leave the last state on the screen."""


class StateLines:
    """Prints a line on `err` whenever the run's state, as people see it, changes (and
    while the server is unreachable, every OUTAGE_LINE_SECONDS)."""

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self._start = time.monotonic()
        self._last = ""
        self._lock = threading.Lock()
        self._outage: OutageClock = OutageClock()
        self._said = -OUTAGE_LINE_SECONDS

    def outage(self, seconds: float | None) -> None:
        with self._lock:
            text = self._outage.update(seconds)
            now = time.monotonic()
            if seconds is not None and now - self._said < OUTAGE_LINE_SECONDS:
                return
            self._said = now if seconds is not None else -OUTAGE_LINE_SECONDS
            took = elapsed(now - self._start)
            print(f"{took} {text}", file=self._err, flush=True)

    def update(self, run: run_pb2.Run) -> None:
        text = state_text(run)
        with self._lock:
            if text != self._last:
                self._last = text
                took = elapsed(time.monotonic() - self._start)
                print(f"{took} Run {run.uuid}: {text}", file=self._err, flush=True)

    def print_line(self, text: str, out: TextIO) -> None:
        with self._lock:
            print(text, file=out, flush=True)

    def close(self) -> None:
        pass


class ProgressLine:
    """One line on the terminal `err`, rewritten in place (`\\r`) as the run changes and
    every second for the clock, with a progress bar while it runs. Log lines printed
    through `print_line` appear above it."""

    def __init__(self, err: TextIO) -> None:
        self._err = err
        self._start = time.monotonic()
        self._run: run_pb2.Run | None = None
        self._shown = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._outage = OutageClock()
        self._ticker = threading.Thread(target=self._tick, name="progress-line", daemon=True)
        self._ticker.start()

    def outage(self, seconds: float | None) -> None:
        with self._lock:
            text = self._outage.update(seconds)
            if seconds is None:  # back: say so on a line of its own, above
                if self._shown:
                    self._err.write("\r\x1b[K")
                took = elapsed(time.monotonic() - self._start)
                self._err.write(f"{took} {text}\n")
                self._shown = False
            self._draw()

    def text(self, width: int | None = None) -> str:
        """What the line says now, fitted into `width` columns: on a narrow terminal the
        run's uuid is shortened to its first 8 characters, then the end is cut."""
        run = self._run
        took = elapsed(time.monotonic() - self._start)
        if run is None:  # nothing seen yet: only an outage to tell
            unreachable = self._outage.text()
            return "" if unreachable is None else f"{took} {unreachable}"
        state = state_text(run)
        unreachable = self._outage.text()
        if unreachable is not None:  # what the run was, and that we cannot see it now
            state = f"{state}; {unreachable}"
        elif run.status == run_pb2.RUN_STATUS_RUNNING:
            state += " " + progress_bar(run.progress)
        line = f"{took} Run {run.uuid}: {state}"
        if width is None or len(line) <= width:
            return line
        return f"{took} Run {run.uuid[:8]}: {state}"[: max(width, 1)]

    def update(self, run: run_pb2.Run) -> None:
        with self._lock:
            self._run = run
            self._draw()

    def print_line(self, text: str, out: TextIO) -> None:
        with self._lock:
            if self._shown and is_terminal(out):  # the same screen: make room above
                self._err.write("\r\x1b[K")
                self._err.flush()
                self._shown = False
            print(text, file=out, flush=True)
            self._draw()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()
        with self._lock:
            self._draw()
            if self._shown:
                self._err.write("\n")
                self._err.flush()
                self._shown = False

    def _draw(self) -> None:
        text = self.text(shutil.get_terminal_size((80, 24)).columns - 1)
        if not text:
            return
        self._err.write("\r" + text + "\x1b[K")
        self._err.flush()
        self._shown = True

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self._lock:
                self._draw()


class OutageClock:
    """How long the server has been unreachable, from what the streams report."""

    def __init__(self) -> None:
        self.since: float | None = None

    def update(self, seconds: float | None) -> str:
        """The text to show now: retrying (and for how long), or back."""
        if seconds is not None:
            self.since = time.monotonic() - seconds
            return outage_text(seconds)
        lasted = None if self.since is None else time.monotonic() - self.since
        self.since = None
        return outage_text(None, lasted)

    def text(self) -> str | None:
        """'server unreachable, retrying (0:00:12)' while it lasts, else None."""
        return None if self.since is None else outage_text(time.monotonic() - self.since)


def outage_printer(err: TextIO) -> OutageListener:
    """A listener printing on `err`: 'server unreachable, retrying (0:00:12)', then
    'server reachable again (unreachable for 0:00:15)'."""
    clock = OutageClock()

    def say(seconds: float | None) -> None:
        print(clock.update(seconds), file=err, flush=True)

    return say


def state_display(err: TextIO) -> StateDisplay:
    """A live line on a terminal, else one line per change."""
    return ProgressLine(err) if is_terminal(err) else StateLines(err)


class LogPrinter(threading.Thread):
    """Prints a run's log, as it comes, through the state display (on another thread)."""

    def __init__(self, follower: LogFollower, display: StateDisplay, out: TextIO) -> None:
        super().__init__(name="log-printer", daemon=True)
        self.follower = follower
        self.display = display
        self.out = out
        self.error: BaseException | None = None

    def run(self) -> None:
        colour = wants_colour(self.out)
        try:
            for entry in self.follower:
                self.display.print_line(entry_line(entry, colour=colour), self.out)
        except BaseException as exc:  # handed to the waiting thread, which reports it
            self.error = exc

    def stop(self) -> None:
        """Stop following and wait for the thread to end."""
        self.follower.cancel()
        self.join()


def wait_for_run(
    handle: Run,
    *,
    timeout: float | None,
    output: str | None,
    follow: bool = False,
    reconnect_timeout: float,
) -> int:
    """Follow the run to its end, showing its state on stderr and, with `follow`, its
    log lines (on stdout, or on stderr when `output` asks for a document on stdout);
    then print how it ended. The exit code tells how it ended."""
    run = handle.state
    display = state_display(sys.stderr)
    printer: LogPrinter | None = None
    if follow:  # the watch reports outages (both streams see the same ones)
        follower = handle.follow(reconnect_timeout=reconnect_timeout, on_outage=_quiet)
        printer = LogPrinter(follower, display, sys.stdout if output is None else sys.stderr)
        printer.start()
    try:
        _wait(handle, timeout, display, reconnect_timeout)
        if printer is not None:
            printer.join()  # it ends once every line of the finished run was printed
            if printer.error is not None:
                raise printer.error
    except WaitTimeoutError as exc:
        _stop(printer, display)
        if output is not None:
            print(run_output(exc.run, output, datetime.now(UTC)))
        print(
            f"stopped waiting after {duration(exc.timeout)}: run {run.uuid} is "
            f"{state_text(exc.run)} and goes on (see: batchyard runs get {run.uuid})",
            file=sys.stderr,
        )
        return EXIT_WAIT_TIMEOUT
    except KeyboardInterrupt:
        _stop(printer, display)
        newline = "" if isinstance(display, ProgressLine) else "\n"  # after the echoed ^C
        print(f"{newline}stopped waiting: run {run.uuid} goes on", file=sys.stderr)
        raise
    except BaseException:
        _stop(printer, display)
        raise
    display.close()
    final = handle.state
    if output is None:
        lines = outcome_lines(final)
        lines[0] = paint_status(lines[0], wants_colour(sys.stdout))
        print("\n".join(lines))
        print_results(handle)
    else:
        print(run_output(final, output, datetime.now(UTC)))
    return exit_code(final)


def _wait(
    handle: Run, timeout: float | None, display: StateDisplay, reconnect_timeout: float
) -> None:
    """Wait for the run's end, each state shown (no progress lines of the SDK's own),
    and each attempt that ended before the last one (also those ended before the watch
    began: `runs watch` after a retry tells what it missed)."""
    told: set[int] = set()

    def seen(run: run_pb2.Run) -> None:
        for line in ended_attempts(run, told):
            display.print_line(line, sys.stderr)
        display.update(run)

    handle.wait(
        timeout,
        show_progress=False,
        raise_on_failure=False,
        reconnect_timeout=reconnect_timeout,
        on_state=seen,
        on_outage=display.outage,
    )


def ended_attempts(run: run_pb2.Run, told: set[int]) -> list[str]:
    """'attempt 1: failed (non-zero exit code), exit code 1: boom' for each attempt that
    ended and is not the run's last (its outcome is said at the end), once (`told`)."""
    lines = []
    for attempt in run.attempts[:-1]:
        if attempt.number in told:
            continue
        told.add(attempt.number)
        status, reason = attempt_state(attempt)
        text = f"attempt {attempt.number}: {status}" + (f" ({reason})" if reason != "-" else "")
        if attempt.HasField("exit_code"):
            text += f", exit code {attempt.exit_code}"
        lines.append(text + (f": {one_line(attempt.message)}" if attempt.message else ""))
    return lines


def print_results(handle: Run) -> None:
    """The run's results (name, size), when it has any, and how to download them."""
    run = handle.state
    if run.status == run_pb2.RUN_STATUS_CANCELLED:
        return
    try:
        results = handle.results()
    except BatchyardError as exc:
        print(f"(cannot list the run's results: {exc.message})", file=sys.stderr)
        return
    if not results:
        return
    count = f"{len(results)} result{'s' if len(results) != 1 else ''}"
    print(f"{count}, {size_text(results.total_bytes)} (batchyard results download {run.uuid}):")
    rows = [[result.name, size_text(result.size_bytes)] for result in results]
    print("\n".join("  " + line for line in table(["NAME", "SIZE"], rows).split("\n")))


def _stop(printer: LogPrinter | None, display: StateDisplay) -> None:
    if printer is not None:
        printer.stop()
    display.close()


def _quiet(_seconds: float | None) -> None:
    """The log follower's outages: the watch of the same run tells them."""


def wait_to_end(handle: Run, args: argparse.Namespace) -> run_pb2.Run | None:
    """Follow the run to its end, its state on stderr (`args.wait_timeout`,
    `args.reconnect_timeout`); None if --wait-timeout passed (said on stderr)."""
    run = handle.state
    display = state_display(sys.stderr)
    try:
        final = handle.wait(
            args.wait_timeout,
            show_progress=False,
            raise_on_failure=False,
            reconnect_timeout=args.reconnect_timeout,
            on_state=display.update,
        ).state
    except WaitTimeoutError as exc:
        display.close()
        print(
            f"stopped waiting after {duration(exc.timeout)}: run {run.uuid} is "
            f"{state_text(exc.run)} and goes on (see: batchyard runs watch {run.uuid})",
            file=sys.stderr,
        )
        return None
    except KeyboardInterrupt:
        display.close()
        newline = "" if isinstance(display, ProgressLine) else "\n"  # after the echoed ^C
        print(f"{newline}stopped waiting: run {run.uuid} goes on", file=sys.stderr)
        raise
    except BaseException:
        display.close()
        raise
    display.close()
    return final
