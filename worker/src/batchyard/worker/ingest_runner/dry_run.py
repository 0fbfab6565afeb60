"""A dry run: the files that would be loaded, the first file's columns as inferred from its
first rows, and whether the table and the mapping fit. Nothing is loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchyard.v1 import ingest_pb2
from batchyard.worker.ingest_runner.decode import Batch, FileError, FileReader
from batchyard.worker.ingest_runner.ledger import Table
from batchyard.worker.ingest_runner.load import plan_for
from batchyard.worker.ingest_runner.mapping import MappingError
from batchyard.worker.ingest_runner.tasks import say, warn
from batchyard.worker.ingest_runner.values import BadValue
from batchyard.worker.sources.port import ObjectStore, SourceError, StoredObject

SAMPLE_ROWS = 100


def infer(values: Sequence[Any]) -> str:
    """The narrowest of integer, double, boolean, timestamp, json, text all ``values`` fit."""
    present = [v for v in values if v not in (None, "")]
    if not present:
        return "unknown (no values)"
    for kind, check in _CHECKS:
        if all(check(v) for v in present):
            return kind
    return "text"


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    try:
        int(str(value))
    except ValueError:
        return False
    return True


def _is_float(value: Any) -> bool:
    if isinstance(value, (bool, dict, list)):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or str(value).lower() in ("true", "false", "t", "f")


def _is_timestamp(value: Any) -> bool:
    from datetime import datetime

    if not isinstance(value, str) or len(value) < 10:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_CHECKS = (
    ("integer", _is_int),
    ("double", _is_float),
    ("boolean", _is_bool),
    ("timestamp", _is_timestamp),
    ("json", lambda value: isinstance(value, (dict, list))),
)


def _columns_of(
    config: ingest_pb2.IngestConfig, reader: FileReader, batch: Batch
) -> dict[str, list[Any]]:
    rows = [row for _, row in batch.rows[:SAMPLE_ROWS]]
    if config.format.WhichOneof("kind") == "ndjson":
        out: dict[str, list[Any]] = {}
        for row in rows:
            for key, value in row.items():
                out.setdefault(key, []).append(value)
        return out
    width = max((len(row) for row in rows), default=len(reader.header or ()))
    names = reader.header or [str(i + 1) for i in range(width)]
    return {name: [row[i] for row in rows if i < len(row)] for i, name in enumerate(names)}


async def check_first_file(
    config: ingest_pb2.IngestConfig, table: Table, store: ObjectStore, item: StoredObject
) -> bool:
    """Reports the first file's columns and checks its rows against the plan; False when
    something does not fit (each problem is reported)."""
    reader = FileReader(store.read(item), item.key, config.format, batch_rows=SAMPLE_ROWS)
    reader.start()
    try:
        first = await anext(reader.batches(), Batch())
    except (FileError, SourceError) as exc:
        warn(f"dry run: cannot read {item.uri}: {exc}")
        return False
    finally:
        await reader.close()
    compression = f" ({reader.compression})" if reader.compression not in ("", "none") else ""
    say(f"columns of {item.uri}{compression}, inferred from its first {len(first.rows)} row(s):")
    for name, values in _columns_of(config, reader, first).items():
        say(f"  {name}: {infer(values)}")
    try:
        plan = plan_for(config, table, reader, first)
    except MappingError as exc:
        warn(f"dry run: the mapping does not fit: {exc}")
        return False
    say(f"mapping into {table.display}:")
    for column in plan.columns:
        target = table.column(column.name)
        source = column.source + 1 if isinstance(column.source, int) else ".".join(column.source)
        say(f"  {column.name} ({target.type if target else '?'}) <- {source}")
    bad = [(line, message) for line, message in first.bad]
    for line, row in first.rows:
        try:
            plan.row(row)
        except BadValue as exc:
            bad.append((line, str(exc)))
    for line, message in sorted(bad)[:10]:
        warn(f"dry run: {item.uri} line {line}: {message}")
    say(f"the sample's rows: {len(first.rows) + len(first.bad) - len(bad)} fit, {len(bad)} bad")
    return True
