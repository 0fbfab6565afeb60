"""`batchyard sql` against the real server: the ad-hoc run it submits, and with --wait the
result table, the failure with the log's tail, and the exit codes.

Most tests act as the SQL worker (lease, store result.csv, complete) so they check the
command alone; the last ones run a real worker with a SQL target database.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys

import pytest

from batchyard.client.cli.main import main
from batchyard.v1 import job_pb2, run_pb2
from batchyard.v1 import run_service_pb2 as pb
from tests.client.acting import ERROR, INFO, SYS, ActingWorker, log_entry
from tests.client.cli_runner import Cli
from tests.client.test_results_client import result_of
from tests.e2e.conftest import start_worker, workspace  # noqa: F401  (fixtures)
from tests.server.helpers import make_queue

QUERY = "SELECT id, name FROM people ORDER BY id"
PEOPLE = b'id,name\r\n1,Ada\r\n2,"Lovelace, Countess"\r\n3,"two\nlines"\r\n'


@pytest.fixture
def cli(capsys, target):
    return Cli(capsys, target, "sql", "--request-timeout")


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


async def get_run(runs, run_id):
    return (await runs.GetRun(pb.GetRunRequest(run=run_id))).run


async def answer(worker, artifacts_dir, result_csv=None, *, fail_with=None):
    """Act as the SQL worker for the next run: store `result_csv` as result.csv and
    succeed, or append `fail_with` (log entries) and fail. The leased run."""
    leased = await worker.lease()
    if fail_with is not None:
        await worker.append(leased, fail_with)
        await worker.fail(leased, exit_code=1, message="the query failed")
        return leased
    results = []
    if result_csv is not None:
        path = artifacts_dir / "runs" / leased.run / str(leased.attempt) / "result.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(result_csv)
        results.append(result_of("result.csv", result_csv, leased.attempt))
    await worker.complete(leased, run_pb2.RUN_STATUS_SUCCEEDED, exit_code=0, results=results)
    return leased


async def waited(cli, worker, artifacts_dir, *argv, result_csv=PEOPLE):
    """`batchyard sql QUERY --target warehouse --wait ARGV...` answered by the test."""
    running = asyncio.create_task(cli(QUERY, "--target", "warehouse", "--wait", *argv))
    leased = await answer(worker, artifacts_dir, result_csv)
    code, out, err = await running
    return leased, code, out, err


# ---------------------------------------------------------------- submitting


async def test_submits_an_inline_sql_run_and_prints_its_id(cli, runs, queues):
    await make_queue(queues, "q")
    code, out, err = await cli(QUERY, "--target", "warehouse", "--timeout", "90s", "--queue", "q")
    assert code == 0
    run_id = out.strip()
    assert out == f"{run_id}\n" and len(run_id) == 36
    assert err == f"submitted run {run_id}; see: batchyard runs watch {run_id}\n"
    run = await get_run(runs, run_id)
    assert run.definition_uuid == "" and run.status == run_pb2.RUN_STATUS_PENDING
    config = run.config
    assert config.type == job_pb2.JOB_TYPE_SQL
    assert config.source.inline.text == QUERY
    assert config.source_location == "query.sql"
    assert config.sql_target.connection == "warehouse"
    assert (config.timeout.seconds, config.queue) == (90, "q")


async def test_the_query_from_a_file_or_stdin(cli, runs, tmp_path, monkeypatch):
    script = tmp_path / "report.sql"
    script.write_text("SELECT 1;\nSELECT 'é';\n")
    code, out, _ = await cli("--file", str(script), "--target", "warehouse")
    assert code == 0
    assert (await get_run(runs, out.strip())).config.source.inline.text == script.read_text()

    monkeypatch.setattr(sys, "stdin", io.StringIO("SELECT now()\n"))
    code, out, _ = await cli("-f", "-", "--target", "warehouse")
    assert code == 0
    assert (await get_run(runs, out.strip())).config.source.inline.text == "SELECT now()\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give the query either as QUERY or with --file"),
        ([QUERY, "--file", "q.sql"], "give the query either as QUERY or with --file"),
        (["  \n"], "the query is empty"),
        (["--file", "/nonexistent/q.sql"], "cannot read /nonexistent/q.sql: No such file"),
        ([QUERY, "-o", "csv"], "-o needs --wait"),
        ([QUERY, "--max-rows", "3"], "--max-rows needs --wait"),
        ([QUERY, "--wait-timeout", "5"], "--wait-timeout needs --wait"),
        (["x" * (1024 * 1024 + 1)], "over 1 MiB"),
    ],
)
async def test_wrong_command_lines_exit_2(cli, runs, argv, message):
    code, out, err = await cli(*argv, "--target", "warehouse")
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and message in err
    assert not (await runs.ListRuns(pb.ListRunsRequest())).runs


async def test_a_bad_target_name_is_refused_with_the_field(cli):
    code, out, err = await cli(QUERY, "--target", "no such name!")
    assert (code, out) == (1, "")
    assert "sql_target.connection" in err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["sql", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:\n  batchyard sql " in out and "--target NAME" in out
    assert "exit codes:" in out


# ---------------------------------------------------------------- --wait


async def test_wait_prints_the_result_table(cli, worker, artifacts_dir):
    leased, code, out, err = await waited(cli, worker, artifacts_dir)
    assert code == 0, err
    assert leased.config.type == job_pb2.JOB_TYPE_SQL
    assert out == (
        "id  name\n1   Ada\n2   Lovelace, Countess\n3   two\\nlines\n"  # a cell stays on its line
    )
    assert err.splitlines()[-1] == "(3 rows)"
    assert f"Run {leased.run}: succeeded" in err


async def test_wait_prints_csv_and_json(cli, worker, artifacts_dir):
    _, code, out, _ = await waited(cli, worker, artifacts_dir, "-o", "csv")
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == list(
        csv.reader(io.StringIO(PEOPLE.decode(), newline=""))
    )
    _, code, out, _ = await waited(cli, worker, artifacts_dir, "-o", "json")
    assert code == 0
    assert json.loads(out) == {
        "columns": ["id", "name"],
        "rows": [["1", "Ada"], ["2", "Lovelace, Countess"], ["3", "two\nlines"]],
        "truncated": False,
    }


async def test_rows_are_capped_and_the_cap_is_said(cli, worker, artifacts_dir):
    many = ("n,square\n" + "".join(f"{i},{i * i}\n" for i in range(1, 1001))).encode()
    _, code, out, err = await waited(cli, worker, artifacts_dir, result_csv=many)
    assert code == 0
    assert len(out.splitlines()) == 101  # the header and the default 100 rows
    assert out.splitlines()[-1].split() == ["100", "10000"]
    assert "(showing the first 100 of 1000 rows; use --max-rows N or --all-rows" in err

    _, code, out, err = await waited(
        cli, worker, artifacts_dir, "--max-rows", "2", "-o", "json", result_csv=many
    )
    assert json.loads(out) == {
        "columns": ["n", "square"],
        "rows": [["1", "1"], ["2", "4"]],
        "truncated": True,
    }
    assert "showing the first 2 of 1000 rows" in err

    _, code, out, err = await waited(
        cli, worker, artifacts_dir, "--all-rows", "-o", "csv", result_csv=many
    )
    assert out == many.decode() and err.splitlines()[-1] == "(1000 rows)"


async def test_long_cells_are_cut_in_the_table(cli, worker, artifacts_dir):
    wide = ("k,v\n1," + "x" * 200_000 + "\n").encode()  # over csv's default field limit
    _, code, out, _ = await waited(cli, worker, artifacts_dir, result_csv=wide)
    assert code == 0
    assert out.splitlines()[1] == "1  " + "x" * 79 + "…"


async def test_a_result_without_rows_or_without_a_result_set(cli, worker, artifacts_dir):
    _, code, out, err = await waited(cli, worker, artifacts_dir, result_csv=b"id,name\n")
    assert (code, out) == (0, "id  name\n")
    assert err.splitlines()[-1] == "(0 rows)"
    _, code, out, err = await waited(cli, worker, artifacts_dir, result_csv=b"")
    assert (code, out) == (0, "")
    assert err.splitlines()[-1] == "(no result set: the last statement returned none)"
    _, code, out, err = await waited(cli, worker, artifacts_dir, result_csv=None)
    assert (code, out) == (0, "")
    assert err.splitlines()[-1] == "(no result set: the run has no result.csv)"


async def test_a_failed_query_exits_1_with_the_tail_of_its_log(cli, worker, artifacts_dir):
    entries = [log_entry(seq, SYS, f"statement {seq}: 1 row", level=INFO) for seq in range(1, 40)]
    entries += [log_entry(40 + i, SYS, f"problem {i}", level=ERROR) for i in range(25)]
    running = asyncio.create_task(cli(QUERY, "--target", "warehouse", "--wait"))
    leased = await answer(worker, artifacts_dir, fail_with=entries)
    code, out, err = await running
    assert (code, out) == (1, "")
    lines = err.splitlines()
    at = lines.index(f"run {leased.run} failed: non-zero exit code")
    assert lines[at + 1] == "  attempt 1 on t: exit code 1: the query failed"
    assert lines[at + 2] == "last lines of the log of attempt 1 (warning and above):"
    tail = lines[at + 3 :]
    assert len(tail) == 20
    assert tail[0].endswith("system ERROR   problem 5") and tail[-1].endswith("problem 24")
    assert "statement" not in err


async def test_wait_timeout_exits_5_and_the_run_goes_on(cli, runs):
    code, out, err = await cli(QUERY, "--target", "warehouse", "--wait", "--wait-timeout", "0.5")
    assert (code, out) == (5, "")
    assert "stopped waiting after 0.5s: run" in err and "goes on" in err


async def test_a_cancelled_query_exits_4(cli, runs, worker):
    running = asyncio.create_task(cli(QUERY, "--target", "warehouse", "--wait"))
    leased = await worker.lease()
    await runs.CancelRun(pb.CancelRunRequest(run=leased.run))
    await worker.stopped(leased)
    code, out, err = await running
    assert (code, out) == (4, "")
    assert f"run {leased.run} cancelled" in err


async def test_a_tampered_result_exits_1(cli, worker, artifacts_dir):
    running = asyncio.create_task(cli(QUERY, "--target", "warehouse", "--wait"))
    leased = await answer(worker, artifacts_dir, PEOPLE)
    stored = artifacts_dir / "runs" / leased.run / "1" / "result.csv"
    stored.write_bytes(PEOPLE.replace(b"Ada", b"Bob"))
    code, out, err = await running
    assert (code, out) == (1, "")
    assert "error: result 'result.csv' is corrupt" in err


# ---------------------------------------------------------------- a real SQL worker


async def test_a_real_worker_runs_the_query(cli, start_worker, sql_target_dsn):  # noqa: F811
    start_worker("--sql-target", f"warehouse={sql_target_dsn}")
    query = (
        "SELECT 1;\n"
        "SELECT id, name FROM (VALUES (1, 'Ada'), (2, 'Lovelace, Countess'), "
        "(3, E'two\\nlines')) AS people (id, name) ORDER BY id;\n"
    )
    code, out, err = await cli(
        query, "--target", "warehouse", "--wait", "--wait-timeout", "60", "-o", "csv"
    )
    assert code == 0, err
    assert list(csv.reader(io.StringIO(out))) == [
        ["id", "name"],
        ["1", "Ada"],
        ["2", "Lovelace, Countess"],
        ["3", "two\nlines"],
    ]
    assert err.splitlines()[-1] == "(3 rows)"


async def test_a_real_worker_fails_at_the_first_error(
    cli,
    start_worker,  # noqa: F811
    sql_target_dsn,
    monkeypatch,
):
    monkeypatch.setenv("BATCHYARD_SQL_TARGET_WAREHOUSE", sql_target_dsn)  # the env form
    start_worker()
    code, out, err = await cli(
        "SELECT 1;\nSELECT 1 / 0;\nSELECT 2;\n",
        "--target",
        "warehouse",
        "--wait",
        "--wait-timeout",
        "60",
    )
    assert (code, out) == (1, ""), err
    assert "division by zero" in err
    assert "last lines of the log of attempt 1 (warning and above):" in err
    assert sql_target_dsn not in err
