"""The column mapping: which target column takes which source value, converted how.

A :class:`Plan` is made once per file (a CSV header may differ from file to file) from the
job's ``columns`` and the target table; ``MappingError`` says what does not fit (a column
the table lacks, a type ingest cannot load, a CSV column that is not in the header).
``Plan.row`` turns one source row (CSV fields, or a JSON object) into the record for COPY,
or raises :class:`~batchyard.worker.ingest_runner.values.BadValue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchyard.v1 import ingest_pb2
from batchyard.worker.ingest_runner.ledger import Table
from batchyard.worker.ingest_runner.values import (
    COMPATIBLE,
    KIND_OF_TYPE,
    BadValue,
    Converter,
    converter,
)

_MISSING = object()


class MappingError(Exception):
    """The mapping does not fit the table or the file; the message is for users."""


@dataclass(frozen=True)
class Column:
    """One target column of a plan."""

    name: str
    source: int | tuple[str, ...]
    """A CSV field's index, or a JSON path."""
    convert: Converter
    nullable: bool
    default: Any
    """The converted default (``_MISSING``: none)."""


@dataclass(frozen=True)
class Plan:
    columns: tuple[Column, ...]
    null_string: str = ""
    width: int | None = None
    """CSV with a header: how many fields each row must have."""

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def row(self, source: Sequence[str] | dict[str, Any]) -> tuple[Any, ...]:
        if isinstance(source, dict):
            return tuple(self._value(c, _walk(source, c.source)) for c in self.columns)
        if self.width is not None and len(source) != self.width:
            raise BadValue(f"the row has {len(source)} fields, the header {self.width}")
        null = self.null_string
        out = []
        for column in self.columns:
            index = column.source
            assert isinstance(index, int)
            if index >= len(source):
                raise BadValue(
                    f"the row has {len(source)} fields; {column.name} needs field {index + 1}"
                )
            value = source[index]
            out.append(self._value(column, None if value == null else value))
        return tuple(out)

    @staticmethod
    def _value(column: Column, value: Any) -> Any:
        if value is None or value is _MISSING:
            if column.default is not _MISSING:
                return column.default
            if not column.nullable:
                raise BadValue(f"{column.name}: a value is required (the column is not nullable)")
            return None
        try:
            return column.convert(value)
        except BadValue as exc:
            raise BadValue(f"{column.name}: {exc}") from None


def _walk(value: Any, path: int | tuple[str, ...]) -> Any:
    assert isinstance(path, tuple)
    for part in path:
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
        if value is _MISSING:
            return value
    return value


def json_path(source: str) -> tuple[str, ...]:
    text = source.removeprefix("$.").removeprefix("$")
    return tuple(text.split(".")) if text else ()


def csv_plan(
    config: ingest_pb2.IngestConfig, table: Table, header: Sequence[str] | None, width: int
) -> Plan:
    """The plan for a CSV file with ``header`` (None: the file has none; ``width``: the
    first row's number of fields)."""
    null = config.format.csv.null_string
    specs = list(config.columns)
    if not specs:
        names = list(header) if header is not None else _first_columns(table, width)
        unknown = [name for name in names if table.column(name) is None]
        if unknown:
            raise MappingError(
                f"the file's column(s) {', '.join(map(repr, unknown))} are not in table "
                f"{table.display} (name the columns to load in `columns`)"
            )
        specs = [ingest_pb2.IngestColumn(name=name) for name in names]
    columns = []
    for spec in specs:
        source = spec.source or spec.name
        if header is not None:
            if source not in header:
                raise MappingError(f"column {spec.name!r}: the CSV header has no column {source!r}")
            index = list(header).index(source)
        elif source.isdigit() and int(source) >= 1:
            index = int(source) - 1
        else:
            raise MappingError(
                f"column {spec.name!r}: without a header the source is a column number, "
                f"not {source!r}"
            )
        columns.append(_column(spec, table, index))
    return Plan(tuple(columns), null, len(header) if header is not None else None)


def ndjson_plan(config: ingest_pb2.IngestConfig, table: Table) -> Plan:
    specs = list(config.columns) or [
        ingest_pb2.IngestColumn(name=column.name)
        for column in table.columns
        if not column.defaulted
    ]
    if not specs:
        raise MappingError(f"table {table.display} has no column to load without a mapping")
    columns = []
    for spec in specs:
        path = json_path(spec.source or spec.name)
        if not path:
            raise MappingError(f"column {spec.name!r}: the JSON path is empty")
        columns.append(_column(spec, table, path))
    return Plan(tuple(columns))


def _first_columns(table: Table, width: int) -> list[str]:
    if width > len(table.columns):
        raise MappingError(
            f"the file's rows have {width} fields, table {table.display} has "
            f"{len(table.columns)} columns"
        )
    return [column.name for column in table.columns[:width]]


def _column(spec: ingest_pb2.IngestColumn, table: Table, source: int | tuple[str, ...]) -> Column:
    target = table.column(spec.name)
    if target is None:
        raise MappingError(f"column {spec.name!r} is not in table {table.display}")
    kind = KIND_OF_TYPE.get(target.type)
    if kind is None:
        raise MappingError(
            f"column {spec.name!r} has type {target.type}, which ingest cannot load "
            f"(it loads {', '.join(sorted(KIND_OF_TYPE))})"
        )
    if spec.type != ingest_pb2.INGEST_COLUMN_TYPE_UNSPECIFIED:
        wanted = ingest_pb2.IngestColumnType.Name(spec.type).removeprefix("INGEST_COLUMN_TYPE_")
        if kind not in COMPATIBLE[wanted]:
            raise MappingError(
                f"column {spec.name!r} is {target.type} in the table; type {wanted} cannot load it"
            )
    convert = converter(target.type, spec.timestamp_format)
    nullable = spec.nullable if spec.HasField("nullable") else not target.not_null
    default: Any = _MISSING
    if spec.HasField("default_value"):
        try:
            default = convert(spec.default_value)
        except BadValue as exc:
            raise MappingError(f"column {spec.name!r}: default_value {exc}") from None
    return Column(spec.name, source, convert, nullable, default)
