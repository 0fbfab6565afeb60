"""Log entries on the terminal: one text line each (coloured by level on a terminal), or
one JSON object per line."""

from __future__ import annotations

import json
import os
from typing import TextIO

from batchyard.client.cli.render import as_datetime, message_dict
from batchyard.client.logs import LEVELS, STREAMS
from batchyard.v1 import log_pb2

LOG_FORMATS = ("text", "json")

# ANSI colours by level; INFO stays plain.
_COLOURS = {
    log_pb2.LOG_LEVEL_DEBUG: "\x1b[2m",  # dim
    log_pb2.LOG_LEVEL_WARNING: "\x1b[33m",  # yellow
    log_pb2.LOG_LEVEL_ERROR: "\x1b[1;31m",  # bold red
}
_RESET = "\x1b[0m"
_LEVEL_WIDTH = max(len(name) for name in LEVELS)
_STREAM_WIDTH = max(len(name) for name in STREAMS)


def level_text(level: log_pb2.LogLevel.ValueType) -> str:
    """'DEBUG', 'INFO', 'WARNING', 'ERROR', or '-' when unset or unknown."""
    for name, value in LEVELS.items():
        if value == level:
            return name.upper()
    return "-"


def stream_text(stream: log_pb2.LogStream.ValueType) -> str:
    """'stdout', 'stderr', 'system', or '-' when unset or unknown."""
    for name, value in STREAMS.items():
        if value == stream:
            return name
    return "-"


def entry_line(entry: log_pb2.LogEntry, *, colour: bool = False) -> str:
    """`HH:MM:SS.mmm [attempt] stream LEVEL message`, the time in UTC, stream and level
    padded so messages line up; with `colour`, level and message coloured by level."""
    when = as_datetime(entry.time)
    clock = "--:--:--.---" if when is None else f"{when:%H:%M:%S}.{when.microsecond // 1000:03}"
    level = level_text(entry.level)
    head = f"{clock} [{entry.attempt}] {stream_text(entry.stream):<{_STREAM_WIDTH}} "
    tail = f"{level:<{_LEVEL_WIDTH}} {entry.message}"
    start = _COLOURS.get(entry.level) if colour else None
    if start is None:
        return head + tail
    return f"{head}{start}{tail}{_RESET}"


def entry_json(entry: log_pb2.LogEntry) -> str:
    """The entry as one line of compact JSON (the protobuf JSON mapping of LogEntry)."""
    return json.dumps(message_dict(entry), ensure_ascii=False, separators=(",", ":"))


def entry_text(entry: log_pb2.LogEntry, output: str, *, colour: bool = False) -> str:
    """The entry as `output` ("text" or "json") asks."""
    return entry_json(entry) if output == "json" else entry_line(entry, colour=colour)


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal that understands ANSI codes (TERM is not "dumb")."""
    isatty = getattr(stream, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # closed or detached
        return False
    return tty and os.environ.get("TERM") != "dumb"


def wants_colour(stream: TextIO) -> bool:
    """Colour on a terminal, unless $NO_COLOR is set (https://no-color.org)."""
    return is_terminal(stream) and not os.environ.get("NO_COLOR")
