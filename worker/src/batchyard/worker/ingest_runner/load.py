"""Loading one file: its ledger row and its rows in one transaction, streamed into COPY.

``COPY … FROM STDIN`` (binary, asyncpg's ``copy_records_to_table``) takes the records as
the file's reader yields them, so a file of any size goes through in bounded memory. The
transaction starts with the ledger row (:meth:`Ledger.claim`): a file already in is
skipped without being read. Anything that goes wrong — a bad row under the fail-fast
policy, the bad-row budget spent, a file that cannot be read, an error of the database, a
stop — rolls the whole file back, ledger row included.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from batchyard.v1 import ingest_pb2
from batchyard.worker.ingest_runner.decode import Batch, FileError, FileReader, compression_of
from batchyard.worker.ingest_runner.ledger import Ledger, Table
from batchyard.worker.ingest_runner.mapping import MappingError, Plan, csv_plan, ndjson_plan
from batchyard.worker.ingest_runner.tasks import Tracker, warn
from batchyard.worker.ingest_runner.values import BadValue
from batchyard.worker.sources.port import ObjectStore, SourceError, StoredObject

MAX_HEADER_BYTES = 1024 * 1024


class FileFailed(Exception):
    """The file could not be loaded (it rolled back); the message names it and says why."""


@dataclass
class BadRows:
    """The run's budget of bad rows (None: fail at the first)."""

    limit: int | None
    tracker: Tracker
    taken: int = 0

    def take(self, item: StoredObject, line: int, message: str) -> None:
        self.tracker.error("LOAD", item.uri, line, message)
        if self.limit is None:
            raise FileFailed(f"{item.uri} line {line}: {message}")
        self.taken += 1
        warn(f"skipped bad row: {item.uri} line {line}: {message}")
        if self.taken > self.limit:
            raise FileFailed(
                f"more than {self.limit} bad rows (the limit of the skip_rows policy); the "
                f"last: {item.uri} line {line}: {message}"
            )


@dataclass
class Context:
    """What every file's load shares."""

    config: ingest_pb2.IngestConfig
    table: Table
    ledger: Ledger
    store: ObjectStore
    tracker: Tracker
    bad: BadRows
    run: str = ""
    attempt: int = 0


@dataclass
class Counts:
    rows: int = 0
    bad: int = 0
    compression: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def plan_for(
    config: ingest_pb2.IngestConfig, table: Table, reader: FileReader, first: Batch
) -> Plan:
    """The file's plan, once its first batch (and so its header) has been read."""
    if config.format.WhichOneof("kind") == "ndjson":
        return ndjson_plan(config, table)
    width = len(first.rows[0][1]) if first.rows else 0
    return csv_plan(config, table, reader.header, width)


def passes_through(config: ingest_pb2.IngestConfig) -> bool:
    """Whether the files go to the database as they are (decompressed): CSV with a header
    naming the columns, no mapping, failing at the first bad row. PostgreSQL then parses
    and converts (``COPY … (FORMAT csv)``), which is faster than any parsing here."""
    options = config.format.csv
    return (
        config.format.WhichOneof("kind") == "csv"
        and (not options.HasField("header") or options.header)
        and not config.columns
        and config.error_policy.WhichOneof("policy") != "skip_rows"
    )


async def load_file(conn: Any, context: Context, item: StoredObject) -> Counts | None:
    """Loads ``item`` in one transaction; None when the ledger says it is in already.
    Raises FileFailed (the transaction rolled back)."""
    async with conn.transaction():
        if not await context.ledger.claim(conn, item, context.run, context.attempt):
            return None
        if passes_through(context.config):
            return await _load_as_is(conn, context, item)
        reader = FileReader(context.store.read(item), item.key, context.config.format)
        reader.start()
        counts = Counts()
        try:
            batches = reader.batches()
            first = await anext(batches, Batch())
            plan = plan_for(context.config, context.table, reader, first)
            records = _records(context, item, plan, first, batches, counts, reader)
            await conn.copy_records_to_table(
                context.table.name,
                schema_name=context.table.schema,
                columns=plan.names,
                records=records,
            )
            await context.ledger.finish(conn, item, counts.rows, counts.bad)
        except (MappingError, FileError, SourceError) as exc:
            raise FileFailed(f"{item.uri}: {exc}") from None
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError):
                raise
            raise FileFailed(
                f"{item.uri}: the database refused the rows: {_pg_error(exc)}"
            ) from None
        finally:
            await reader.close()
        counts.compression = reader.compression
        return counts


async def _load_as_is(conn: Any, context: Context, item: StoredObject) -> Counts:
    """The file's bytes into ``COPY … FROM STDIN (FORMAT csv, HEADER)``, its header naming
    the columns (a byte order mark is dropped). Plain files go from S3 to the database
    without a thread; compressed ones through the reader's thread, decompressed."""
    options = context.config.format.csv
    counts = Counts()
    stored = context.store.read(item)
    reader: FileReader | None = None
    try:
        head = await anext(stored, b"")
        counts.compression = compression_of(item.key, head[:4], context.config.format.compression)
        if counts.compression == "none":
            chunks = _prepend(head, stored)
        else:
            reader = FileReader(_prepend(head, stored), item.key, context.config.format, raw=True)
            reader.start()
            chunks = reader.chunks()
        first, header = await _header(chunks, options)
        if header is None:
            raise FileFailed(f"{item.uri}: the file is empty (no CSV header)")
        csv_plan(context.config, context.table, header, len(header))  # the columns exist
        status = await conn.copy_to_table(
            context.table.name,
            schema_name=context.table.schema,
            columns=header,
            source=_tracked(context, item, first, chunks),
            **_copy_options(options),
        )
        counts.rows = int(status.rsplit(" ", 1)[-1])
        await context.ledger.finish(conn, item, counts.rows, 0)
    except (MappingError, FileError, SourceError) as exc:
        raise FileFailed(f"{item.uri}: {exc}") from None
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError):
            raise
        raise FileFailed(f"{item.uri}: the database refused the rows: {_pg_error(exc)}") from None
    finally:
        if reader is not None:
            await reader.close()
        await stored.aclose()  # type: ignore[attr-defined]
    return counts


def _copy_options(options: ingest_pb2.CsvFormat) -> dict[str, Any]:
    copy: dict[str, Any] = {"format": "csv", "header": True}
    if options.delimiter:
        copy["delimiter"] = options.delimiter
    if options.quote:
        copy["quote"] = options.quote
    if options.null_string:
        copy["null"] = options.null_string
    return copy


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _tracked(
    context: Context, item: StoredObject, first: bytes, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """The bytes for COPY, the file's progress counted as they go (compressed bytes for a
    compressed file are estimated by the decompressed ones, capped at the size)."""
    tracker = context.tracker
    sent = len(first)
    yield first
    async for chunk in chunks:
        sent += len(chunk)
        tracker.running_bytes[item.uri] = min(sent, item.size)
        tracker.report()
        yield chunk


async def _header(
    chunks: AsyncIterator[bytes], options: ingest_pb2.CsvFormat
) -> tuple[bytes, list[str] | None]:
    """The bytes read until the header's line end (BOM dropped), and the header's names."""
    data = b""
    async for chunk in chunks:
        data += chunk
        if b"\n" in data or len(data) > MAX_HEADER_BYTES:
            break
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    line = data.split(b"\n", 1)[0]
    if not line.strip():
        return data, None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileError(f"the CSV header is not UTF-8 text (byte {exc.start})") from None
    row = next(
        csv.reader(
            [text.rstrip("\r")], delimiter=options.delimiter or ",", quotechar=options.quote or '"'
        )
    )
    return data, row


async def _records(
    context: Context,
    item: StoredObject,
    plan: Plan,
    first: Batch,
    batches: AsyncIterator[Batch],
    counts: Counts,
    reader: FileReader,
) -> AsyncIterator[tuple[Any, ...]]:
    tracker = context.tracker
    batch: Batch | None = first
    while batch is not None:
        for line, message in batch.bad:
            counts.bad += 1
            context.bad.take(item, line, message)
        for line, row in batch.rows:
            try:
                record = plan.row(row)
            except BadValue as exc:
                counts.bad += 1
                context.bad.take(item, line, str(exc))
                continue
            counts.rows += 1
            yield record
        tracker.running_bytes[item.uri] = reader.bytes_read
        tracker.report()
        batch = await anext(batches, None)


def _pg_error(exc: asyncpg.PostgresError) -> str:
    message = getattr(exc, "message", None) or str(exc)
    sqlstate = getattr(exc, "sqlstate", None)
    out = f"{message} (SQLSTATE {sqlstate})" if sqlstate else message
    for extra in (getattr(exc, "detail", None), getattr(exc, "context", None)):
        if extra:
            out += f"; {extra}"
    return out
