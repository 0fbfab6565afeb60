"""Source values (CSV text, or JSON values) converted to what a target column's type takes.

Each converter takes a value that is not null and returns what asyncpg's binary COPY encodes
for the column's type, or raises :class:`BadValue` (the row is then bad): a text that is
no number, an integer out of the column's range, a NUL in a text, a date in another format.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Converter = Callable[[Any], Any]

KIND_OF_TYPE = {
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "float4": "double",
    "float8": "double",
    "numeric": "numeric",
    "bool": "boolean",
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "name": "text",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "json": "json",
    "jsonb": "json",
    "uuid": "uuid",
}
"""The PostgreSQL types ingest loads, by the kind of converter they need."""

COMPATIBLE = {
    "TEXT": {"text"},
    "INTEGER": {"integer"},
    "DOUBLE": {"double"},
    "NUMERIC": {"numeric"},
    "BOOLEAN": {"boolean"},
    "TIMESTAMP": {"timestamp", "timestamptz"},
    "DATE": {"date"},
    "JSON": {"json"},
}
"""Which target kinds a mapping's ``type`` may load."""

_INT_RANGES = {"int2": 2**15, "int4": 2**31, "int8": 2**63}
_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}


class BadValue(Exception):
    """The value does not fit the column; the message says why."""


def converter(pg_type: str, timestamp_format: str = "") -> Converter:
    """The converter for a column of ``pg_type`` (one of :data:`KIND_OF_TYPE`)."""
    kind = KIND_OF_TYPE[pg_type]
    if kind == "integer":
        return _integer(_INT_RANGES[pg_type])
    if kind in ("timestamp", "timestamptz", "date"):
        return _moment(kind, timestamp_format)
    return _SIMPLE[kind]


def _integer(bound: int) -> Converter:
    def convert(value: Any) -> int:
        if isinstance(value, bool):
            raise BadValue(f"{value!r} is not an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise BadValue(f"{value!r} is not an integer")
            value = int(value)
        elif not isinstance(value, int):
            try:
                value = int(str(value).strip())
            except ValueError:
                raise BadValue(f"{_show(value)} is not an integer") from None
        number: int = value
        if not -bound <= number < bound:
            raise BadValue(f"{number} is out of the column's range")
        return number

    return convert


def _double(value: Any) -> float:
    if isinstance(value, bool):
        raise BadValue(f"{value!r} is not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadValue(f"{_show(value)} is not a number") from None


def _numeric(value: Any) -> Decimal:
    if isinstance(value, (bool, dict, list)):
        raise BadValue(f"{_show(value)} is not a number")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise BadValue(f"{_show(value)} is not a number") from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue(f"{_show(value)} is not a boolean")


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if "\x00" in text:
        raise BadValue("text may not contain a NUL character")
    return text


def _json(value: Any) -> str:
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            raise BadValue(f"{_show(value)} is not JSON") from None
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    if "\\u0000" in text:
        raise BadValue("JSON may not contain a NUL character")
    return text


def _uuid(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise BadValue(f"{_show(value)} is not a UUID") from None


_SIMPLE: dict[str, Converter] = {
    "double": _double,
    "numeric": _numeric,
    "boolean": _boolean,
    "text": _text,
    "json": _json,
    "uuid": _uuid,
}


def _moment(kind: str, fmt: str) -> Converter:
    def parse(value: Any) -> datetime:
        if fmt in ("epoch", "epoch_ms"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise BadValue(f"{_show(value)} is not a number of seconds") from None
            return datetime.fromtimestamp(number / 1000 if fmt == "epoch_ms" else number, UTC)
        text = str(value).strip()
        try:
            if fmt:
                return datetime.strptime(text, fmt)
            if kind == "date" and len(text) == 10:
                return datetime.combine(date.fromisoformat(text), datetime.min.time())
            return datetime.fromisoformat(text)
        except ValueError:
            expected = f"format {fmt!r}" if fmt else "ISO 8601"
            raise BadValue(f"{_show(value)} is not a {kind} in {expected}") from None

    def convert(value: Any) -> Any:
        moment = parse(value)
        if kind == "date":
            return moment.date()
        if kind == "timestamptz":
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        if moment.tzinfo is not None:
            return moment.astimezone(UTC).replace(tzinfo=None)
        return moment

    return convert


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
