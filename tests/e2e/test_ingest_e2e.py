"""INGEST runs end to end: the SDK submits, a real worker process runs the ingest runner
against moto S3 and the target database ``sandbox``; GetRun returns the task counts the
runner reported, WatchRun streams them, and a bad config is refused with its field."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from batchyard.client import AsyncClient, InvalidArgumentError, Status
from batchyard.v1 import run_pb2
from tests.worker.ingest_fixtures import create_table, csv_lines, new_table, numbered

pytestmark = pytest.mark.usefixtures("aws_env")


async def test_an_ingest_run_loads_a_prefix_and_reports_task_counts(
    target: str, start_worker: Any, s3: Any, bucket: str, s3_endpoint: str, sql_target_dsn: str
) -> None:
    table = new_table()
    conn = await asyncpg.connect(sql_target_dsn)
    try:
        await create_table(conn, table)
        for i in range(3):
            s3.put_object(Bucket=bucket, Key=f"e/{i}.csv", Body=csv_lines(numbered(i * 10, 4)))
        start_worker()
        async with AsyncClient(target, timeout=10) as client:
            run = await client.ingest(
                f"s3://{bucket}/e/", target="sandbox", table=table, endpoint_url=s3_endpoint
            )
            seen: list[run_pb2.Run] = []

            async def watch() -> None:
                async for state in run.watch():
                    seen.append(state)

            await asyncio.wait_for(watch(), 60)
            final = seen[-1]
            assert final.status == run_pb2.RUN_STATUS_SUCCEEDED, final.message
            got = await client.runs.get(run.id)
            tasks = got.state.tasks
            phases = {phase.name: phase for phase in tasks.phases}
            assert phases["LIST"].done == 1 and phases["LOAD"].done == 3
            assert tasks.percent_complete == 100 and not tasks.estimated
            assert any(state.HasField("tasks") for state in seen)
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 12
            assert await got.status() == Status.SUCCEEDED

            with pytest.raises(InvalidArgumentError) as refused:
                await client.ingest("http://nope", target="sandbox", table="bad name!")
            fields = {field for field, _ in refused.value.field_violations}
            assert {"config.ingest.input.uri", "config.ingest.table"} <= fields
    finally:
        await conn.close()


async def test_batchyard_ingest_wait_dry_run_then_load_then_nothing_left(
    capsys: Any,
    target: str,
    start_worker: Any,
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    sql_target_dsn: str,
) -> None:
    from tests.client.cli_runner import Cli

    table = new_table()
    conn = await asyncpg.connect(sql_target_dsn)
    try:
        await create_table(conn, table)
        s3.put_object(Bucket=bucket, Key="c/a.csv", Body=csv_lines(numbered(1, 3)))
        s3.put_object(Bucket=bucket, Key="c/b.csv", Body=csv_lines(numbered(7, 2)))
        start_worker()
        ingest = Cli(capsys, target, "ingest", "--request-timeout")
        uri = f"s3://{bucket}/c/"
        common = (uri, "--target", "sandbox", "--table", table, "--endpoint-url", s3_endpoint)
        code, _, err = await ingest(*common, "--dry-run", "--wait")
        assert code == 0, err
        assert "tasks: LIST done · LOAD 0/2 done · 0%" in err
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0
        code, _, err = await ingest(*common, "--regex", r"a\.csv$", "--wait")
        assert code == 0, err
        assert "tasks: LIST done · LOAD done · 100%" in err
        code, _, err = await ingest(*common, "--wait")
        assert code == 0, err
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 5
        code, _, err = await ingest(*common, "--format", "ndjson", "--max-bad-rows", "0", "--wait")
        assert code == 1 and "max_bad_rows" in err
    finally:
        await conn.close()
