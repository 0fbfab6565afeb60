"""SQL jobs as real executions: the runner subprocess against a second PostgreSQL database
(``sql_target_dsn``: its own database and role), never a mock."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from google.protobuf import duration_pb2

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.attempt import Execution, ExecutionOptions
from batchyard.worker.outcome import StopReason
from tests.worker.jobs import MemorySink, Result, alive, run_job, workspace_job

RUNNER = b"batchyard.worker.sql_runner"


def sql_job(
    text: str, *, connection: str = "target", dsn: str = "", timeout: float | None = None
) -> job_pb2.JobConfig:
    """An inline SQL job against the worker's connection ``connection`` (or a DSN secret)."""
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SQL,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text=text)),
        sql_target=job_pb2.SqlTarget(dsn=dsn) if dsn else job_pb2.SqlTarget(connection=connection),
    )
    if timeout is not None:
        config.timeout.CopyFrom(duration_pb2.Duration())
        config.timeout.FromTimedelta(timedelta(seconds=timeout))
    return config


@pytest.fixture
def sql_options(options: ExecutionOptions, sql_target_dsn: str) -> ExecutionOptions:
    return replace(options, sql_targets={"target": sql_target_dsn})


@pytest.fixture
async def target(sql_target_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the target database, to look at what the jobs did."""
    conn = await asyncpg.connect(sql_target_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def admin(pg_admin_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_admin_dsn)
    yield conn
    await conn.close()


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def password_of(dsn: str) -> str:
    password = urlsplit(dsn).password
    assert password
    return password


def assert_no_secret(result: Result, dsn: str) -> None:
    """Neither the DSN nor its password is in any log entry or the outcome."""
    password = password_of(dsn)
    texts = [record.message for record in result.sink.records] + [result.outcome.message]
    for text in texts:
        assert password not in text
        assert dsn not in text


def runner_pids(attempt_root: Path) -> list[int]:
    """The SQL runners working in this attempt's directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if RUNNER in argv and any(arg.startswith(bytes(attempt_root)) for arg in argv):
            found.append(int(entry.name))
    return found


async def active_queries(admin: asyncpg.Connection, marker: str) -> list[asyncpg.Record]:
    return await admin.fetch(
        "SELECT pid, application_name FROM pg_stat_activity "
        "WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        marker,
    )


async def test_a_file_runs_statement_by_statement_with_row_counts(
    sql_options: ExecutionOptions, workspace: Path, table: str
) -> None:
    (workspace / "sql").mkdir()
    (workspace / "sql" / "report.sql").write_text(
        f"-- a report\nCREATE TABLE {table} (id int PRIMARY KEY, name text);\n"
        f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c');\n"
        f"UPDATE {table} SET name = upper(name) WHERE id < 3;\n"
        f"DELETE FROM {table} WHERE id = 3;\n"
        f"SELECT id, name FROM {table} ORDER BY id;\n"
    )
    config = workspace_job("sql", "report.sql", job_type=job_pb2.JOB_TYPE_SQL)
    config.sql_target.connection = "target"
    result = await run_job(config, sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.outcome.progress == 100
    stdout = result.sink.lines_of("stdout")
    assert stdout[0].startswith('connected to database "by_sql_')
    assert stdout[0].endswith("; 5 statements")
    outcomes = [line for line in stdout[1:] if not line.startswith(("[1/5]", "connected"))]
    assert f"[2/5] line 3: INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')" in outcomes
    assert [line.rsplit(" (", 1)[0] for line in stdout if "line " not in line][1:] == [
        "[1/5] CREATE TABLE",
        "[2/5] INSERT 0 3: 3 rows",
        "[3/5] UPDATE 2: 2 rows",
        "[4/5] DELETE 1: 1 row",
        "[5/5] 2 rows saved to result.csv",
    ]
    assert "starting: sql job: report.sql against connection 'target'" in result.sink.system()
    assert result.output_files == {"result.csv": b"id,name\n1,A\n2,B\n"}


CSV_QUERY = """
SET TimeZone = 'UTC';
SELECT * FROM (VALUES
  (1, 'plain', 1.50::numeric, '2024-01-02 03:04:05.123456+02'::timestamptz,
   '{"k": [1, "a,b"]}'::json),
  (2, 'comma, "quotes"' || E'\\nnew line', NULL, NULL, NULL),
  (3, '', -0.000001, '1999-12-31 23:59:59+00', 'null'::json)
) AS v(id, "text, col", amount, at, doc)
ORDER BY id
"""

CSV_EXPECTED = (
    b'id,"text, col",amount,at,doc\n'
    b'1,plain,1.50,2024-01-02 01:04:05.123456+00,"{""k"": [1, ""a,b""]}"\n'
    b'2,"comma, ""quotes""\nnew line",,,\n'
    b'3,"",-0.000001,1999-12-31 23:59:59+00,null\n'
)


async def test_the_last_result_set_is_saved_as_csv_exactly(sql_options: ExecutionOptions) -> None:
    result = await run_job(sql_job(CSV_QUERY), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.output_files == {"result.csv": CSV_EXPECTED}


async def test_returning_rows_run_once_and_a_trailing_comment_is_harmless(
    sql_options: ExecutionOptions, target: asyncpg.Connection, table: str
) -> None:
    text = (
        f"CREATE TABLE {table} (id serial, v text);\n"
        "SELECT 1 AS a;\n"
        f"INSERT INTO {table} (v) VALUES ('x'), ('y') RETURNING id, v -- the new rows"
    )
    result = await run_job(sql_job(text), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    stdout = result.sink.lines_of("stdout")
    assert any(line.startswith("[2/3] 1 row returned (") for line in stdout)
    assert any(line.startswith("[3/3] 2 rows saved to result.csv (") for line in stdout)
    assert result.output_files == {"result.csv": b"id,v\n1,x\n2,y\n"}
    assert await target.fetchval(f"SELECT count(*) FROM {table}") == 2


async def test_rows_copy_cannot_wrap_are_fetched_into_the_csv(
    sql_options: ExecutionOptions,
) -> None:
    text = "SET TimeZone = 'Europe/Paris'; EXPLAIN SELECT 1; SHOW TimeZone;"
    result = await run_job(sql_job(text), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert any(line.startswith("[2/3] 1 row returned") for line in result.sink.lines_of("stdout"))
    assert result.output_files == {"result.csv": b"TimeZone\nEurope/Paris\n"}


async def test_an_error_stops_the_file_and_later_statements_never_run(
    sql_options: ExecutionOptions, target: asyncpg.Connection, table: str
) -> None:
    text = (
        f"CREATE TABLE {table} (id int PRIMARY KEY);\n"
        f"INSERT INTO {table} VALUES (1);\n"
        f"INSERT INTO {table}\n  VALUES (1);\n"
        f"INSERT INTO {table} VALUES (3);\n"
        f"SELECT * FROM {table};\n"
    )
    result = await run_job(sql_job(text), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert result.outcome.exit_code == 1
    error = (
        f'ERROR: duplicate key value violates unique constraint "{table}_pkey" '
        "(SQLSTATE 23505) in statement 3 of 5 at line 3"
    )
    assert result.sink.lines_of("stderr") == [error, "DETAIL: Key (id)=(1) already exists."]
    assert error in result.outcome.message
    assert not any(line.startswith("[4/5]") for line in result.sink.lines_of("stdout"))
    assert await target.fetch(f"SELECT id FROM {table}") == [(1,)]
    assert result.output_files == {}


async def test_a_syntax_error_names_the_line_it_is_on(sql_options: ExecutionOptions) -> None:
    result = await run_job(sql_job("SELECT 1;\nSELECT a,\n  b\n  FORM t;\nSELECT 2;"), sql_options)
    assert result.outcome.exit_code == 1
    assert result.sink.lines_of("stderr") == [
        'ERROR: syntax error at or near "t" (SQLSTATE 42601) in statement 2 of 3 at line 4'
    ]


FUNCTION = """
CREATE FUNCTION {name}(n int) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'n is %; fine', n;
  IF n > 1 THEN RETURN 'many; really'; END IF;
  RETURN $q$one;'$q$;
END;
$$;
DO $do$ BEGIN PERFORM {name}(3); END $do$;
SELECT {name}(1) AS one, {name}(2) AS "two";
"""


async def test_dollar_quoted_function_bodies_stay_whole(sql_options: ExecutionOptions) -> None:
    name = f"f_{uuid.uuid4().hex[:10]}"
    result = await run_job(sql_job(FUNCTION.format(name=name)), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    stdout = result.sink.lines_of("stdout")
    assert any(line.startswith("[1/3] CREATE FUNCTION (") for line in stdout)
    assert "NOTICE: n is 3; fine" in stdout
    assert result.output_files == {"result.csv": b"one,two\none;',many; really\n"}


NOISY = """
CREATE FUNCTION {name}(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'row %', n;
  IF n % 1000 = 0 THEN RAISE WARNING 'row % of many', n; END IF;
  RETURN n;
END $$;
SELECT {name}(g) AS n FROM generate_series(1, 3000) AS g;
"""


async def test_notices_while_rows_are_copied_cost_no_rows(sql_options: ExecutionOptions) -> None:
    """asyncpg drops COPY data that arrives next to a notice (MagicStack/asyncpg#1264)."""
    name = f"f_{uuid.uuid4().hex[:10]}"
    result = await run_job(sql_job(NOISY.format(name=name)), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    expected = "n\n" + "".join(f"{n}\n" for n in range(1, 3001))
    assert result.output_files == {"result.csv": expected.encode()}


async def test_the_files_own_transactions_work(
    sql_options: ExecutionOptions, target: asyncpg.Connection, table: str
) -> None:
    text = (
        f"CREATE TABLE {table} (id int);\n"
        f"BEGIN; INSERT INTO {table} VALUES (1); ROLLBACK;\n"
        f"BEGIN; INSERT INTO {table} VALUES (2); COMMIT;\n"
        f"BEGIN; INSERT INTO {table} VALUES (3);\n"
    )
    result = await run_job(sql_job(text), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stderr") == [
        "the file ends inside a transaction (no COMMIT): it was rolled back"
    ]
    assert await target.fetch(f"SELECT id FROM {table}") == [(2,)]
    assert result.output_files == {}  # the last statement returns no rows


async def test_an_empty_file_succeeds_without_a_result(sql_options: ExecutionOptions) -> None:
    result = await run_job(sql_job("-- nothing yet\n;\n/* later */"), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert result.outcome.progress == 100
    assert result.sink.lines_of("stdout") == ["the SQL file holds no statements: nothing to run"]
    assert result.output_files == {}


async def test_an_unknown_target_fails_as_source_unavailable(
    sql_options: ExecutionOptions, sql_target_dsn: str
) -> None:
    result = await run_job(sql_job("SELECT 1", connection="nope"), sql_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE
    message = "sql target 'nope' is not configured on this worker (configured: target)"
    assert f"source unavailable: {message}" in result.sink.system()
    assert message in result.outcome.message
    assert not any(line.startswith("starting") for line in result.sink.system())
    assert_no_secret(result, sql_target_dsn)


async def test_a_dsn_secret_is_a_target_too(options: ExecutionOptions, sql_target_dsn: str) -> None:
    result = await run_job(sql_job("SELECT 41 + 1 AS answer", dsn=sql_target_dsn), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert "starting: sql job: query.sql against a DSN secret" in result.sink.system()
    assert result.output_files == {"result.csv": b"answer\n42\n"}
    assert_no_secret(result, sql_target_dsn)


async def test_a_failed_connection_keeps_the_password_out(
    options: ExecutionOptions, sql_target_dsn: str
) -> None:
    parts = urlsplit(sql_target_dsn)
    wrong = urlunsplit(parts._replace(path="/no_such_database"))
    result = await run_job(sql_job("SELECT 1", dsn=wrong), options)
    assert result.outcome.exit_code == 3
    [error] = result.sink.lines_of("stderr")
    assert error.startswith("cannot connect to the target database: ")
    assert "no_such_database" in error
    assert_no_secret(result, wrong)


async def test_the_dsn_is_never_on_the_runners_command_line(
    sql_options: ExecutionOptions, sql_target_dsn: str, admin: asyncpg.Connection
) -> None:
    marker = f"m_{uuid.uuid4().hex[:10]}"
    command_lines: list[bytes] = []
    applications: list[str] = []

    async def during(execution: Execution, sink: MemorySink) -> None:
        queries: list[asyncpg.Record] = []

        async def poll() -> bool:
            queries[:] = await active_queries(admin, marker)
            return bool(queries)

        await wait_async(poll, "the statement to run", within=20)
        applications.extend(row["application_name"] for row in queries)
        for pid in runner_pids(execution.paths.root):
            command_lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())

    text = f"SELECT pg_sleep(2) AS {marker}"
    result = await run_job(sql_job(text), sql_options, during=during)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert applications == ["batchyard-sql-job"]
    [argv] = command_lines
    assert argv.split(b"\0")[1:4] == [b"-I", b"-m", RUNNER]
    assert password_of(sql_target_dsn).encode() not in argv
    assert b"canary" not in argv and b"postgres" not in argv
    assert_no_secret(result, sql_target_dsn)


async def wait_async(condition: Callable[[], Awaitable[bool]], what: str, within: float) -> None:
    """``wait_for`` with a condition that has to query something."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class LongQuery:
    """A ``SELECT pg_sleep(60)`` job, watched in pg_stat_activity and /proc."""

    def __init__(self, admin: asyncpg.Connection) -> None:
        self.admin = admin
        self.marker = f"m_{uuid.uuid4().hex[:10]}"
        self.config = sql_job(f"SELECT 1;\nSELECT pg_sleep(60) AS {self.marker};")
        self.runners: list[int] = []

    async def running(self) -> bool:
        return bool(await active_queries(self.admin, self.marker))

    def stop_once_running(
        self, reason: StopReason
    ) -> Callable[[Execution, MemorySink], Awaitable[None]]:
        async def during(execution: Execution, sink: MemorySink) -> None:
            await self.started(execution)
            execution.stop(reason)

        return during

    async def started(self, execution: Execution) -> None:
        await wait_async(self.running, "the long query to run", within=20)
        self.runners = runner_pids(execution.paths.root)
        assert len(self.runners) == 1

    async def assert_ended(self, within: float) -> None:
        """The runner is gone, and so is its query on the server."""
        assert not [pid for pid in self.runners if alive(pid)]

        async def ended() -> bool:
            return not await self.running()

        await wait_async(ended, "the query to end on the server", within=within)


async def test_timeout_cancels_the_running_statement(
    sql_options: ExecutionOptions, admin: asyncpg.Connection
) -> None:
    patient = replace(sql_options, kill_grace=30.0)  # the runner exits on SIGTERM by itself
    query = LongQuery(admin)
    query.config.timeout.FromTimedelta(timedelta(seconds=6))

    async def during(execution: Execution, sink: MemorySink) -> None:
        await query.started(execution)

    result = await run_job(query.config, patient, during=during)
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_TIMEOUT
    assert "sent SIGKILL to the job's process group" not in result.sink.system()
    assert result.sink.lines_of("stderr") == [
        "stopped by a signal during statement 2 of 2; the statement was cancelled"
    ]
    await query.assert_ended(within=2)


async def test_cancel_stops_the_runner_and_its_query(
    sql_options: ExecutionOptions, admin: asyncpg.Connection
) -> None:
    query = LongQuery(admin)
    during = query.stop_once_running(StopReason.CANCEL)
    result = await run_job(query.config, sql_options, during=during)
    assert result.outcome.status == run_pb2.RUN_STATUS_CANCELLED
    await query.assert_ended(within=5)


async def test_a_killed_runner_leaves_no_query_running(
    sql_options: ExecutionOptions, admin: asyncpg.Connection
) -> None:
    """A lost lease SIGKILLs the job at once: the runner cannot cancel anything, the server
    notices its client is gone (client_connection_check_interval) and ends the query."""
    query = LongQuery(admin)
    during = query.stop_once_running(StopReason.LEASE_LOST)
    result = await run_job(query.config, sql_options, during=during)
    assert result.outcome.stopped is StopReason.LEASE_LOST
    assert "sent SIGKILL to the job's process group" in result.sink.system()
    await query.assert_ended(within=15)


async def test_sql_jobs_take_no_args(sql_options: ExecutionOptions) -> None:
    config = sql_job("SELECT 1")
    config.args.append("extra")
    result = await run_job(config, sql_options)
    assert result.outcome.exit_code == 2
    assert result.sink.lines_of("stderr") == [
        "sql runner: expected one SQL file, got 2 arguments (SQL jobs take no args)"
    ]
