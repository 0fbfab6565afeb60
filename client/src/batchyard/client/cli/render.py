"""How the command line shows things: aligned tables, relative times, JSON and YAML.

JSON and YAML are the protobuf JSON mapping of the messages (camelCase field names), so
what a command prints can be edited and fed back to the commands that read files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message

from batchyard.client.describe import absolute_time as absolute_time
from batchyard.client.describe import as_datetime as as_datetime
from batchyard.client.describe import duration as duration
from batchyard.client.describe import relative_time as relative_time

OUTPUT_FORMATS = ("table", "json", "yaml")


Paint = Callable[[int, str], str]
"""Styles a padded cell of a column: `paint(column, text)` (ANSI colours on a terminal)."""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], paint: Paint | None = None) -> str:
    """Left-aligned columns two spaces apart, headers first; no trailing spaces. `paint`
    styles the body's cells after they are padded, so colours keep the columns aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str], styled: bool) -> str:
        padded = [cell.ljust(w) for cell, w in zip(cells, widths, strict=True)]
        padded[-1] = padded[-1].rstrip()
        if styled and paint is not None:
            padded = [paint(i, cell) for i, cell in enumerate(padded)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers, False), *(line(row, True) for row in rows)])


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """A `Key:  value` view; multi-line values are indented under their first line."""
    width = max((len(key) for key, _ in pairs), default=0) + 2
    lines = []
    for key, value in pairs:
        first, *rest = value.split("\n")
        lines.append(f"{key + ':':<{width}}{first}".rstrip())
        lines += [f"{'':<{width}}{line}".rstrip() for line in rest]
    return "\n".join(lines)


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


def print_listing(
    found: Sequence[Message],
    limit: int | None,
    output: str,
    table_of: Callable[[Sequence[Message]], str],
    *,
    noun: str,
    order: str = "first",
) -> None:
    """A list command's output: at most `limit` of the items found (one more than that
    was asked for, to tell whether there are more) as a table or a document, "no NOUN
    found" on stderr for an empty table, and a note on stderr when there are more."""
    shown = found[:limit]
    if output != "table":
        print(data_text([message_dict(item) for item in shown], output))
    elif shown:
        print(table_of(shown))
    else:
        print(f"no {noun} found", file=sys.stderr)
    if limit is not None and len(found) > limit:
        print(
            f"(showing the {order} {limit}; there are more: use --all or a larger --limit)",
            file=sys.stderr,
        )
