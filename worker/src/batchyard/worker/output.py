"""A job's output as numbered log records, and the progress it reports.

:class:`OutputCollector` is the single producer of an attempt's log: it numbers records
1, 2, 3, … with no gap (the ``seq`` of the log service), stamps them with the time the worker
read them, gives each a level, parses ``::progress <0-100>`` lines, and enforces the
per-attempt output cap. Records go to a :class:`LogSink`; today that is a bounded tail in
memory (:mod:`batchyard.worker.log_tail`), and a log shipper can consume the same records.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from batchyard.worker.lines import DEFAULT_MAX_LINE_BYTES, Line, LineSplitter

DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024

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


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One line of an attempt's log."""

    seq: int
    time: datetime
    stream: Stream
    level: Level
    message: str


class LogSink(Protocol):
    """Where an attempt's records go. ``emit`` must not block for long or raise."""

    def emit(self, record: LogRecord) -> None: ...

    def close(self) -> None: ...


def parse_progress(text: str) -> int | None:
    """The value of a ``::progress <0-100>`` line (fractions are cut), else None."""
    if not text.startswith("::progress"):
        return None
    match = _PROGRESS.fullmatch(text)
    if match is None:
        return None
    value = float(match.group(1))
    return int(value) if 0 <= value <= 100 else None


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
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._splitters = {
            Stream.STDOUT: LineSplitter(max_line_bytes),
            Stream.STDERR: LineSplitter(max_line_bytes),
        }
        self._max_output = max_output_bytes
        self._output_bytes = 0
        self._discarded_bytes = 0
        self._over_limit = False
        self._seq = 0
        self._closed = False
        self.progress: int | None = None
        """The latest progress the job reported, if any."""

    @property
    def last_seq(self) -> int:
        """The seq of the last record emitted (0 before the first)."""
        return self._seq

    def feed(self, stream: Stream, data: bytes) -> None:
        """Takes a chunk the job wrote to ``stream`` (stdout or stderr)."""
        lines = self._splitters[stream].feed(data)
        if lines:
            now = self._clock()
            for line in lines:
                self._line(stream, line, now)

    def end(self, stream: Stream) -> None:
        """Marks the end of ``stream``: a last line without a line break is emitted."""
        line = self._splitters[stream].flush()
        if line is not None:
            self._line(stream, line, self._clock())

    def system(self, message: str, level: Level = Level.INFO) -> None:
        """Records something the worker did (never counted against the output cap)."""
        self._emit(Stream.SYSTEM, level, message, self._clock())

    def close(self) -> None:
        """Ends the attempt's log: notes discarded output and closes the sink (idempotent)."""
        if self._closed:
            return
        for stream in (Stream.STDOUT, Stream.STDERR):
            self.end(stream)
        if self._over_limit:
            self.system(
                f"discarded {self._discarded_bytes} bytes of output over the limit of "
                f"{self._max_output} bytes per attempt",
                Level.WARNING,
            )
        self._closed = True
        self._sink.close()

    def _line(self, stream: Stream, line: Line, now: datetime) -> None:
        text = line.text
        progress = parse_progress(text)
        if progress is not None:
            self.progress = progress
        if self._over_limit or self._output_bytes + line.size > self._max_output:
            if not self._over_limit:
                self._over_limit = True
                self.system(
                    f"output limit of {self._max_output} bytes per attempt reached; "
                    "further output is discarded",
                    Level.WARNING,
                )
            self._discarded_bytes += line.size
            return
        self._output_bytes += line.size
        self._emit(stream, line_level(stream, text), text, now)

    def _emit(self, stream: Stream, level: Level, message: str, now: datetime) -> None:
        if self._closed:
            return
        self._seq += 1
        self._sink.emit(LogRecord(self._seq, now, stream, level, message))
