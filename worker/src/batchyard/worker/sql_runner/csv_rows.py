"""CSV the way PostgreSQL's ``COPY … (FORMAT csv, HEADER)`` writes them.

Used for the rows of statements COPY cannot wrap (SHOW, EXPLAIN, CALL, FETCH, EXECUTE):
a NULL is an empty field, an empty string is ``""``, a field holding the delimiter, a quote,
a line break or ``\\.`` is quoted with its quotes doubled; lines end with ``\\n``. Values
arrive decoded by asyncpg and are written in (close to) PostgreSQL's text form: booleans as
``t``/``f``, bytes as ``\\x…`` hex, times in ISO 8601 with a space.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

_NEEDS_QUOTES = frozenset(',"\n\r')


class CsvRecords:
    """Counts the records of a CSV stream fed in chunks: line breaks outside quotes."""

    def __init__(self) -> None:
        self.count = 0
        self._quoted = False

    def feed(self, chunk: bytes) -> None:
        parts = chunk.split(b'"')  # each quote flips in or out of a quoted field
        for index, part in enumerate(parts):
            if not self._quoted:
                self.count += part.count(b"\n")
            if index < len(parts) - 1:
                self._quoted = not self._quoted


def csv_line(values: Iterable[object]) -> bytes:
    """One CSV line, UTF-8, with its ``\\n``."""
    return (",".join(_field(value) for value in values) + "\n").encode("utf-8")


def _field(value: object) -> str:
    if value is None:
        return ""
    text = _text(value)
    if text == "" or text == "\\." or not _NEEDS_QUOTES.isdisjoint(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)
