"""INGEST jobs as real executions: the ingest runner subprocess reading a moto S3 server and
loading a second PostgreSQL database (``sql_target_dsn``), never a mock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from batchyard.v1 import ingest_pb2, run_pb2
from batchyard.worker.execution.attempt import ExecutionOptions
from tests.worker.ingest_fixtures import (
    create_table,
    csv_lines,
    expected_digest,
    gz,
    ingest_job,
    new_table,
    numbered,
    table_digest,
    zst,
)
from tests.worker.jobs import Result, run_job

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture
def ingest_options(options: ExecutionOptions, sql_target_dsn: str) -> ExecutionOptions:
    return replace(options, sql_targets={"target": sql_target_dsn})


@pytest.fixture
async def target(sql_target_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(sql_target_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def table(target: asyncpg.Connection) -> str:
    name = new_table()
    await create_table(target, name)
    return name


def log(result: Result) -> str:
    return "\n".join(record.message for record in result.sink.records)


def succeeded(result: Result) -> None:
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, log(result)


async def test_one_csv_object_is_loaded(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    rows = numbered(1, 50)
    s3.put_object(Bucket=bucket, Key="in/one.csv", Body=csv_lines(rows))
    result = await run_job(
        ingest_job(f"s3://{bucket}/in/one.csv", s3_endpoint, table), ingest_options
    )
    succeeded(result)
    assert await table_digest(target, table) == expected_digest(rows)
    assert result.outcome.progress == 100
    assert "1 of 1 file(s) are in" in log(result)


async def test_a_prefix_with_a_regex_loads_the_matching_files_once_even_when_run_again(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    expected = []
    for i in range(4):
        rows = numbered(i * 100, 10)
        expected += rows
        s3.put_object(Bucket=bucket, Key=f"p/day-{i}.csv", Body=csv_lines(rows))
    s3.put_object(Bucket=bucket, Key="p/skip-me.txt", Body=b"id,name,amount\n999,x,1\n")
    job = ingest_job(f"s3://{bucket}/p/", s3_endpoint, table, regex=r"day-\d\.csv$", concurrency=2)
    first = await run_job(job, ingest_options)
    succeeded(first)
    assert await table_digest(target, table) == expected_digest(expected)
    again = await run_job(job, ingest_options, run="run-2")
    succeeded(again)
    assert "4 of 4 file(s) were loaded before" in log(again)
    assert await table_digest(target, table) == expected_digest(expected)


async def test_max_files_loads_the_first_keys_in_order(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"m/{i}.csv", Body=csv_lines(numbered(i * 10, 2)))
    job = ingest_job(f"s3://{bucket}/m/", s3_endpoint, table, max_files=2)
    succeeded(await run_job(job, ingest_options))
    assert await table_digest(target, table) == expected_digest(numbered(0, 2) + numbered(10, 2))


@pytest.mark.parametrize("mapped", [False, True], ids=["as-is", "mapped"])
async def test_csv_edge_cases_quotes_newlines_nulls_bom_and_crlf(
    mapped: bool,
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    body = (
        "\ufeffid,name,amount\r\n"
        '1,"comma, inside",10\r\n'
        '2,"a ""quoted"" word",\r\n'
        '3,"two\r\nlines",30\r\n'
        "4,,40\r\n"
    ).encode()
    s3.put_object(Bucket=bucket, Key="edge.csv", Body=body)
    succeeded(
        await run_job(ingest_job(f"s3://{bucket}/edge.csv", s3_endpoint, table), ingest_options)
    )
    rows = [tuple(r.values()) for r in await target.fetch(f"SELECT * FROM {table} ORDER BY id")]
    assert rows == [
        (1, "comma, inside", 10),
        (2, 'a "quoted" word', None),
        (3, "two\r\nlines", 30),
        (4, None, 40),
    ]


async def test_ndjson_with_nested_paths_types_defaults_and_timestamps(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
) -> None:
    table = new_table()
    await create_table(
        target,
        table,
        "id bigint NOT NULL, city text, tags jsonb, seen timestamptz, score float8, "
        "country text NOT NULL, day date",
    )
    lines = [
        '{"id": 1, "user": {"address": {"city": "Oslo"}}, "tags": ["a", "b"], '
        '"ts": "2024-01-02T03:04:05Z", "score": 1.5, "d": "02/01/2024"}',
        "",
        '{"id": 2, "user": {}, "tags": null, "ts": "2024-05-06 07:08:09+02:00", "score": 2, '
        '"country": "SE", "d": "31/12/2023"}',
    ]
    s3.put_object(Bucket=bucket, Key="events.ndjson", Body="\n".join(lines).encode())
    columns = [
        ingest_pb2.IngestColumn(name="id"),
        ingest_pb2.IngestColumn(name="city", source="user.address.city"),
        ingest_pb2.IngestColumn(name="tags"),
        ingest_pb2.IngestColumn(
            name="seen", source="ts", type=ingest_pb2.INGEST_COLUMN_TYPE_TIMESTAMP
        ),
        ingest_pb2.IngestColumn(name="score"),
        ingest_pb2.IngestColumn(name="country", default_value="NO"),
        ingest_pb2.IngestColumn(name="day", source="d", timestamp_format="%d/%m/%Y"),
    ]
    job = ingest_job(
        f"s3://{bucket}/events.ndjson", s3_endpoint, table, form="ndjson", columns=columns
    )
    succeeded(await run_job(job, ingest_options))
    rows = await target.fetch(
        f"SELECT id, city, tags::text, seen AT TIME ZONE 'UTC' AS seen, score, country, "
        f"day::text FROM {table} ORDER BY id"
    )
    assert [tuple(r.values()) for r in rows] == [
        (
            1,
            "Oslo",
            '["a", "b"]',
            __import__("datetime").datetime(2024, 1, 2, 3, 4, 5),
            1.5,
            "NO",
            "2024-01-02",
        ),
        (
            2,
            None,
            None,
            __import__("datetime").datetime(2024, 5, 6, 5, 8, 9),
            2.0,
            "SE",
            "2023-12-31",
        ),
    ]


@pytest.mark.parametrize(
    "compress,name", [(gz, "a.csv.gz"), (zst, "a.csv.zst"), (gz, "noext"), (zst, "noext2")]
)
async def test_gzip_and_zstd_are_recognised_by_name_or_magic(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
    compress: Any,
    name: str,
) -> None:
    rows = numbered(1, 200)
    s3.put_object(Bucket=bucket, Key=name, Body=compress(csv_lines(rows)))
    succeeded(
        await run_job(ingest_job(f"s3://{bucket}/{name}", s3_endpoint, table), ingest_options)
    )
    assert await table_digest(target, table) == expected_digest(rows)


async def test_skip_rows_records_each_bad_row_and_fails_past_the_limit(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    body = b"id,name,amount\n1,a,1\nxx,b,2\n3,c,99999999999\n4,d,4\n,e,5\n"
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=body)
    job = ingest_job(f"s3://{bucket}/bad.csv", s3_endpoint, table, max_bad_rows=3)
    result = await run_job(job, ingest_options)
    succeeded(result)
    assert [r["id"] for r in await target.fetch(f"SELECT id FROM {table} ORDER BY id")] == [1, 4]
    text = log(result)
    assert "bad.csv line 3: id: 'xx' is not an integer" in text
    assert "bad.csv line 4: amount: 99999999999 is out of the column's range" in text
    assert "bad.csv line 6: id: a value is required" in text
    strict = ingest_job(
        f"s3://{bucket}/bad.csv",
        s3_endpoint,
        new := __import__("tests.worker.ingest_fixtures", fromlist=["x"]).new_table(),
        max_bad_rows=2,
    )
    await create_table(target, new)
    failed = await run_job(strict, ingest_options)
    assert failed.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert "more than 2 bad rows" in log(failed)
    assert await target.fetchval(f"SELECT count(*) FROM {new}") == 0


async def test_fail_fast_stops_at_a_bad_file_mid_way_and_a_rerun_finishes_the_rest(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    good = [numbered(i * 100, 5) for i in range(4)]
    for i, rows in enumerate(good):
        s3.put_object(Bucket=bucket, Key=f"f/{i}.csv", Body=csv_lines(rows))
    s3.put_object(Bucket=bucket, Key="f/1.csv", Body=csv_lines(good[1]) + b"oops,x,1\n")
    job = ingest_job(f"s3://{bucket}/f/", s3_endpoint, table)
    failed = await run_job(job, ingest_options)
    assert failed.outcome.status == run_pb2.RUN_STATUS_FAILED
    text = log(failed)
    assert f"s3://{bucket}/f/1.csv: the database refused the rows: invalid input syntax" in text
    assert 'line 7, column id: "oops"' in text
    assert "1 of 4 file(s) are in" in text
    assert f"failed: s3://{bucket}/f/1.csv" in text and f"not loaded: s3://{bucket}/f/2.csv" in text
    assert await table_digest(target, table) == expected_digest(good[0])
    s3.put_object(Bucket=bucket, Key="f/1.csv", Body=csv_lines(good[1]))  # fixed: a new ETag
    again = await run_job(job, ingest_options, run="run-2")
    succeeded(again)
    assert await table_digest(target, table) == expected_digest(
        [row for rows in good for row in rows]
    )


async def test_an_empty_prefix_fails_with_a_clear_message(
    ingest_options: ExecutionOptions, bucket: str, s3_endpoint: str, table: str
) -> None:
    result = await run_job(
        ingest_job(f"s3://{bucket}/nothing/", s3_endpoint, table), ingest_options
    )
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert f"no files to load: nothing below s3://{bucket}/nothing/" in log(result)


async def test_a_key_with_odd_characters(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    key = "odd/ä ö+%20&=?#'\"~ (1).csv"
    rows = numbered(1, 3)
    s3.put_object(Bucket=bucket, Key=key, Body=csv_lines(rows))
    succeeded(await run_job(ingest_job(f"s3://{bucket}/odd/", s3_endpoint, table), ingest_options))
    assert await table_digest(target, table) == expected_digest(rows)


async def test_a_table_the_role_may_not_write_is_a_clear_error(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    pg_admin_dsn: str,
    sql_target_dsn: str,
) -> None:
    from tests import pg

    admin = await asyncpg.connect(
        pg.dsn_for(pg_admin_dsn, await target.fetchval("SELECT current_database()"))
    )
    name = new_table()
    try:
        await admin.execute(f"CREATE TABLE public.{name} (id bigint, name text, amount int)")
        await admin.execute(f"GRANT SELECT ON public.{name} TO PUBLIC")
    finally:
        await admin.close()
    s3.put_object(Bucket=bucket, Key="x.csv", Body=csv_lines(numbered(1, 2)))
    result = await run_job(ingest_job(f"s3://{bucket}/x.csv", s3_endpoint, name), ingest_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert f"may not insert into table public.{name} (permission denied)" in log(result)


async def test_a_missing_table_and_a_column_it_lacks_are_clear_errors(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    table: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="y.csv", Body=b"id,colour\n1,red\n")
    missing = await run_job(
        ingest_job(f"s3://{bucket}/y.csv", s3_endpoint, "no_such"), ingest_options
    )
    assert "table 'no_such' does not exist" in log(missing)
    wrong = await run_job(ingest_job(f"s3://{bucket}/y.csv", s3_endpoint, table), ingest_options)
    assert wrong.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert "column(s) 'colour' are not in table" in log(wrong)


async def test_a_dry_run_lists_infers_checks_and_loads_nothing(
    ingest_options: ExecutionOptions,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    target: asyncpg.Connection,
    table: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="d/a.csv", Body=csv_lines(numbered(1, 5)))
    s3.put_object(Bucket=bucket, Key="d/b.csv.gz", Body=gz(csv_lines(numbered(9, 5))))
    job = ingest_job(f"s3://{bucket}/d/", s3_endpoint, table, dry_run=True)
    result = await run_job(job, ingest_options)
    succeeded(result)
    text = log(result)
    assert "2 file(s)" in text and f"s3://{bucket}/d/b.csv.gz" in text
    assert "id: integer" in text and "name: text" in text
    assert "id (int8) <- 1" in text
    assert "dry run: nothing was loaded" in text
    assert await target.fetchval(f"SELECT count(*) FROM {table}") == 0
