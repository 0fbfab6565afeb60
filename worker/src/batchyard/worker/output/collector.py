"""A job's output as numbered log records, and the progress it reports.

:class:`OutputCollector` is the single producer of an attempt's log: it numbers records
1, 2, 3, … with no gap (the ``seq`` of the log service; the worker's system entries share the
sequence), stamps them with the time the worker read them and gives each a level. Records go
to a :class:`LogSink`: during a leased attempt a :class:`FanOutSink` to the in-memory tail
(:mod:`batchyard.worker.output.tail`, quoted in failure messages) and the log shipper
(:mod:`batchyard.worker.shipping.shipper`, which sends them to the server).

Rules users see in the stored log:

* **Levels**: stdout is INFO and stderr WARNING, unless a line is a JSON object with a
  ``level`` field (``"error"``, ``"warn"``, ``"debug"``, …), which it keeps.
* **Progress**: a line that is exactly ``::progress <0-100>`` (optionally a fraction, which
  is cut, or a ``%``) sets the run's progress and is *not* stored in the log: it takes no
  seq and does not count against the caps. A malformed one (``::progress 150``,
  ``::progress soon``) is an ordinary line and is stored.
* **Tasks**: a line ``::tasks {json}`` (the JSON form of ``batchyard.v1.TaskSummary``:
  phases with counts per state, ``percentComplete``, ``estimated``, ``errors``) sets the
  run's task summary, the latest winning, and is not stored either; one that does not parse
  or is out of bounds (more than 16 phases) is an ordinary line.
* **Per line**: a line longer than ``max_line_bytes`` (16 KiB by default) keeps its first
  bytes and ends with the marker ``…[truncated N bytes]`` (:mod:`batchyard.worker.output.lines`).
* **Per attempt**: at most ``max_output_lines`` lines (1,000,000 by default) and
  ``max_output_bytes`` bytes (64 MiB by default, or the job's ``resources.output_bytes``)
  of stdout/stderr are kept. Once either cap is reached the rest of the output is dropped,
  and when the attempt ends ONE system entry says how many lines and bytes were dropped.
  Progress still counts past the caps, and the run itself is unaffected.
* **Secrets**: given a :class:`~batchyard.worker.output.masking.Masker`, every stored record — the
  job's lines and the worker's own system entries — has the job's secret values and their
  encoded forms replaced by ``***``. Lines are masked once whole (a secret split across two
  reads of the pipe is still one line); without a masker nothing is searched.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from google.protobuf import json_format

from batchyard.config import Flag, integer
from batchyard.config import size as size_kind
from batchyard.v1 import task_pb2
from batchyard.worker.output.lines import DEFAULT_MAX_LINE_BYTES, LineSplitter
from batchyard.worker.output.masking import Masker

DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_OUTPUT_LINES = 1_000_000
MAX_LINE_BYTES_LIMIT = 64_000
"""The server keeps log messages of up to 64 KiB characters (the cut marker included)."""

MAX_LINE_BYTES = Flag(
    "max-line-bytes",
    size_kind(1, MAX_LINE_BYTES_LIMIT),
    "a job's output line is cut past this size, with a visible marker",
    default=DEFAULT_MAX_LINE_BYTES,
)
MAX_OUTPUT_LINES = Flag(
    "max-output-lines",
    integer(1),
    "lines of output kept per attempt; the rest is dropped and counted",
    default=DEFAULT_MAX_OUTPUT_LINES,
)
MAX_OUTPUT_BYTES = Flag(
    "max-output-bytes",
    size_kind(1),
    "output kept per attempt, unless the job sets resources.output_bytes",
    default=DEFAULT_MAX_OUTPUT_BYTES,
)
FLAGS = (MAX_LINE_BYTES, MAX_OUTPUT_LINES, MAX_OUTPUT_BYTES)
_PROGRESS_PREFIX = "::progress"
_TASKS_PREFIX = "::tasks "
MAX_TASK_PHASES = 16
MAX_TASK_ERRORS = 20

_PROGRESS = re.compile(r"::progress\s+(\d{1,3}(?:\.\d*)?)\s*%?\s*")


class Stream(enum.StrEnum):
    """Where a record came from."""

    STDOUT = "stdout"
    STDERR = "stderr"
    SYSTEM = "system"  # what the worker did: started, signals sent, exit code


class Level(enum.StrEnum):
    """How severe a record is."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_LEVEL_NAMES = {
    "trace": Level.DEBUG,
    "debug": Level.DEBUG,
    "info": Level.INFO,
    "notice": Level.INFO,
    "warn": Level.WARNING,
    "warning": Level.WARNING,
    "err": Level.ERROR,
    "error": Level.ERROR,
    "exception": Level.ERROR,
    "crit": Level.ERROR,
    "critical": Level.ERROR,
    "fatal": Level.ERROR,
    "alert": Level.ERROR,
    "emerg": Level.ERROR,
}

_DEFAULT_LEVEL = {
    Stream.STDOUT: Level.INFO,
    Stream.STDERR: Level.WARNING,
    Stream.SYSTEM: Level.INFO,
}


class LogRecord(NamedTuple):
    """One line of an attempt's log (a named tuple: made for every line, so made cheaply)."""

    seq: int
    time: datetime
    stream: Stream
    level: Level
    message: str


class LogSink(Protocol):
    """Where an attempt's records go. ``emit`` must not block for long or raise."""

    def emit(self, record: LogRecord) -> None: ...

    def close(self) -> None: ...


class FanOutSink:
    """Hands every record to several sinks, in order."""

    def __init__(self, *sinks: LogSink) -> None:
        self._emits = tuple(sink.emit for sink in sinks)
        self._sinks = sinks

    def emit(self, record: LogRecord) -> None:
        for emit in self._emits:
            emit(record)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()


def parse_progress(text: str) -> int | None:
    """The value of a ``::progress <0-100>`` line (fractions are cut), else None."""
    if not text.startswith(_PROGRESS_PREFIX):
        return None
    match = _PROGRESS.fullmatch(text)
    if match is None:
        return None
    value = float(match.group(1))
    return int(value) if 0 <= value <= 100 else None


def parse_tasks(text: str) -> task_pb2.TaskSummary | None:
    """The summary of a ``::tasks {json}`` line (``batchyard.v1.TaskSummary`` in its JSON
    form, at most 16 phases and 20 errors; the line itself is capped by max-line-bytes),
    else None."""
    if not text.startswith(_TASKS_PREFIX):
        return None
    try:
        summary = json_format.Parse(text[len(_TASKS_PREFIX) :], task_pb2.TaskSummary())
    except json_format.ParseError:
        return None
    if len(summary.phases) > MAX_TASK_PHASES or not 0 <= summary.percent_complete <= 100:
        return None
    if any(not 1 <= len(phase.name) <= 32 for phase in summary.phases):
        return None
    if len(summary.errors) > MAX_TASK_ERRORS:
        del summary.errors[: len(summary.errors) - MAX_TASK_ERRORS]
    return summary


def line_level(stream: Stream, text: str) -> Level:
    """stdout is INFO and stderr WARNING, unless the line is a JSON object with a level."""
    default = _DEFAULT_LEVEL[stream]
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return default
    try:
        document = json.loads(stripped)
    except ValueError:
        return default
    level = document.get("level") if isinstance(document, dict) else None
    if not isinstance(level, str):
        return default
    return _LEVEL_NAMES.get(level.strip().lower(), default)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OutputCollector:
    """Turns an attempt's stdout/stderr chunks and the worker's notes into log records."""

    def __init__(
        self,
        sink: LogSink,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        max_output_lines: int = DEFAULT_MAX_OUTPUT_LINES,
        clock: Callable[[], datetime] = _utc_now,
        masker: Masker | None = None,
    ) -> None:
        self._sink = sink
        self._emit_record = sink.emit
        self._clock = clock
        self._masker = masker
        self._splitters = {
            Stream.STDOUT: LineSplitter(max_line_bytes, on_cut=self._mask_cut),
            Stream.STDERR: LineSplitter(max_line_bytes, on_cut=self._mask_cut),
        }
        self._max_output = max_output_bytes
        self._max_lines = max_output_lines
        self._output_bytes = 0
        self._output_lines = 0
        self._dropped_bytes = 0
        self._dropped_lines = 0
        self._over_limit = False
        self._seq = 0
        self._finished = False
        self._closed = False
        self.progress: int | None = None
        """The latest progress the job reported, if any."""
        self.tasks: task_pb2.TaskSummary | None = None
        """The latest task summary the job reported (a new object each time), if any."""

    @property
    def last_seq(self) -> int:
        """The seq of the last record emitted (0 before the first)."""
        return self._seq

    @property
    def dropped(self) -> tuple[int, int]:
        """Lines and bytes of output dropped over the per-attempt caps so far."""
        return self._dropped_lines, self._dropped_bytes

    @property
    def masker(self) -> Masker | None:
        """What the records are masked with (None: nothing to mask)."""
        return self._masker

    @masker.setter
    def masker(self, masker: Masker | None) -> None:
        self._masker = masker

    def feed(self, stream: Stream, data: bytes) -> None:
        """Takes a chunk the job wrote to ``stream`` (stdout or stderr)."""
        lines = self._splitters[stream].feed_pairs(data)
        if lines:
            if self._masker is not None:
                lines = self._masker.mask_pairs(lines)
            self._lines(stream, lines, self._clock())

    def end(self, stream: Stream) -> None:
        """Marks the end of ``stream``: a last line without a line break is emitted."""
        line = self._splitters[stream].flush()
        if line is not None:
            lines: list[tuple[str, int]] = [line]
            if self._masker is not None:
                lines = self._masker.mask_pairs(lines)
            self._lines(stream, lines, self._clock())

    def system(self, message: str, level: Level = Level.INFO) -> None:
        """Records something the worker did (never counted against the output caps)."""
        if self._masker is not None:
            message = self._masker.mask(message)
        self._emit(Stream.SYSTEM, level, message, self._clock())

    def finish(self) -> None:
        """Ends the job's output: emits last lines without a line break, then the one
        note on output dropped over the caps, if any (idempotent)."""
        if self._finished:
            return
        for stream in (Stream.STDOUT, Stream.STDERR):
            self.end(stream)
        self._finished = True
        if self._over_limit:
            self.system(
                f"output limit reached: dropped {self._dropped_lines} lines "
                f"({self._dropped_bytes} bytes) of output over the per-attempt limits of "
                f"{self._max_lines} lines and {self._max_output} bytes",
                Level.WARNING,
            )

    def close(self) -> None:
        """Ends the attempt's log (:meth:`finish`) and closes the sink (idempotent)."""
        if self._closed:
            return
        self.finish()
        self._closed = True
        self._sink.close()

    def _mask_cut(self, text: str) -> str:
        """The kept part of a line cut at ``max_line_bytes``."""
        return text if self._masker is None else self._masker.mask_cut(text)

    def _lines(self, stream: Stream, lines: list[tuple[str, int]], now: datetime) -> None:
        # The hot path: one call per chunk, not per line.
        if self._finished:
            return
        default = _DEFAULT_LEVEL[stream]
        emit = self._emit_record
        new = tuple.__new__
        for text, size in lines:
            if text.startswith(_PROGRESS_PREFIX):
                progress = parse_progress(text)
                if progress is not None:
                    self.progress = progress
                    continue  # kept out of the stored log
            elif text.startswith(_TASKS_PREFIX):
                tasks = parse_tasks(text)
                if tasks is not None:
                    self.tasks = tasks
                    continue  # kept out of the stored log
            if (
                self._over_limit
                or self._output_lines >= self._max_lines
                or self._output_bytes + size > self._max_output
            ):
                self._over_limit = True
                self._dropped_lines += 1
                self._dropped_bytes += size
                continue
            self._output_lines += 1
            self._output_bytes += size
            level = line_level(stream, text) if "{" in text else default
            self._seq += 1
            emit(new(LogRecord, (self._seq, now, stream, level, text)))

    def _emit(self, stream: Stream, level: Level, message: str, now: datetime) -> None:
        if self._closed:
            return
        self._seq += 1
        self._emit_record(LogRecord(self._seq, now, stream, level, message))
