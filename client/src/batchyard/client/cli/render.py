"""How the command line shows things: aligned tables, relative times, JSON and YAML.

JSON and YAML are the protobuf JSON mapping of the messages (camelCase field names), so
what a command prints can be edited and fed back to the commands that read files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

OUTPUT_FORMATS = ("table", "json", "yaml")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, headers first; no trailing spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """A `Key:  value` view; multi-line values are indented under their first line."""
    width = max((len(key) for key, _ in pairs), default=0) + 2
    lines = []
    for key, value in pairs:
        first, *rest = value.split("\n")
        lines.append(f"{key + ':':<{width}}{first}".rstrip())
        lines += [f"{'':<{width}}{line}".rstrip() for line in rest]
    return "\n".join(lines)


def as_datetime(ts: Timestamp) -> datetime | None:
    """The timestamp as an aware UTC datetime, or None when it is unset."""
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def relative_time(when: datetime | None, now: datetime) -> str:
    """'just now', '42 s ago', '3 min ago', '5 h ago', '2 days ago', or a date if older."""
    if when is None:
        return "-"
    seconds = int((now - when).total_seconds())
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    if days < 30:
        return "1 day ago" if days == 1 else f"{days} days ago"
    return when.strftime("%Y-%m-%d")


def absolute_time(when: datetime | None, now: datetime) -> str:
    """'2024-05-01 12:00:03 UTC (3 min ago)'."""
    if when is None:
        return "-"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({relative_time(when, now)})"


def duration(seconds: float) -> str:
    """A compact duration: '90s' → '1m30s', '3600s' → '1h', '0.5s' → '0.5s'."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def message_dict(message: Message) -> dict[str, Any]:
    """The protobuf JSON mapping of a message, as plain Python values."""
    return json_format.MessageToDict(message)


def to_json(value: Any) -> str:
    """Indented JSON of plain values (see `message_dict`)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (inline sources) as `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def to_yaml(value: Any) -> str:
    """Block-style YAML of plain values, keys in their given order."""
    text: str = yaml.dump(
        value, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return text.rstrip("\n")


def data_text(value: Any, output: str) -> str:
    """Plain values as `output` asks: "json", else YAML."""
    return to_json(value) if output == "json" else to_yaml(value)
