"""Helpers of the ingest tests: an INGEST job's configuration, objects put into moto S3,
and the target table looked at from a connection of the test's own."""

from __future__ import annotations

import gzip
import hashlib
import uuid
from typing import Any

import asyncpg
import zstandard

from batchyard.v1 import ingest_pb2, job_pb2


def ingest_job(
    uri: str,
    endpoint: str,
    table: str,
    *,
    form: str = "csv",
    columns: list[ingest_pb2.IngestColumn] | None = None,
    regex: str = "",
    max_files: int = 0,
    concurrency: int = 1,
    dry_run: bool = False,
    max_bad_rows: int | None = None,
    csv: ingest_pb2.CsvFormat | None = None,
    connection: str = "target",
) -> job_pb2.JobConfig:
    """An INGEST job loading ``uri`` (on the moto ``endpoint``) into ``table``."""
    config = ingest_pb2.IngestConfig(
        input=ingest_pb2.IngestInput(
            uri=uri,
            endpoint_url=endpoint,
            region="us-east-1",
            regex_filter=regex,
            max_files=max_files,
        ),
        table=table,
        columns=columns or [],
        input_concurrency=concurrency,
        dry_run=dry_run,
    )
    if form == "csv":
        config.format.csv.CopyFrom(csv or ingest_pb2.CsvFormat())
    else:
        config.format.ndjson.SetInParent()
    if max_bad_rows is not None:
        config.error_policy.skip_rows.max_bad_rows = max_bad_rows
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_INGEST,
        sql_target=job_pb2.SqlTarget(connection=connection),
        ingest=config,
    )


def csv_lines(rows: list[tuple[Any, ...]], header: str = "id,name,amount") -> bytes:
    body = "".join(",".join(str(v) for v in row) + "\n" for row in rows)
    return (header + "\n" + body).encode()


def numbered(start: int, count: int) -> list[tuple[int, str, int]]:
    return [(i, f"name-{i}", i * 3) for i in range(start, start + count)]


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def new_table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


async def create_table(conn: asyncpg.Connection, table: str, columns: str = "") -> None:
    await conn.execute(
        f"CREATE TABLE {table} ({columns or 'id bigint NOT NULL, name text, amount int'})"
    )


async def table_digest(conn: asyncpg.Connection, table: str) -> tuple[int, str]:
    """(rows, an md5 of every row in id order): what 'every row exactly once' is checked by."""
    rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY id")
    text = "\n".join(repr(tuple(row.values())) for row in rows)
    return len(rows), hashlib.md5(text.encode()).hexdigest()


def expected_digest(rows: list[tuple[int, str, int]]) -> tuple[int, str]:
    text = "\n".join(repr(row) for row in sorted(rows))
    return len(rows), hashlib.md5(text.encode()).hexdigest()
