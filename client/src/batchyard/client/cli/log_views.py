"""Log entries on the terminal: one text line each (coloured by level on a terminal), or
one JSON object per line."""

from __future__ import annotations

import json
import os
from typing import TextIO

from batchyard.client.cli.render import message_dict, to_yaml
from batchyard.client.describe import entry_line as entry_line
from batchyard.client.describe import level_text as level_text
from batchyard.client.describe import stream_text as stream_text
from batchyard.v1 import log_pb2

LOG_FORMATS = ("text", "table", "json", "yaml")
"""text and table: one line per entry; json: one JSON object per line; yaml: one YAML
document per entry."""


def entry_json(entry: log_pb2.LogEntry) -> str:
    """The entry as one line of compact JSON (the protobuf JSON mapping of LogEntry)."""
    return json.dumps(message_dict(entry), ensure_ascii=False, separators=(",", ":"))


def entry_text(entry: log_pb2.LogEntry, output: str, *, colour: bool = False) -> str:
    """The entry as `output` asks: a line ("text", "table"), a JSON line ("json"), or a
    YAML document ("yaml", starting with `---`)."""
    if output == "json":
        return entry_json(entry)
    if output == "yaml":
        return "---\n" + to_yaml(message_dict(entry))
    return entry_line(entry, colour=colour)


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
