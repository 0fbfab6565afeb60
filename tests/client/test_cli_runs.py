"""`batchyard runs ...` against the real server, with the test acting as the worker.

The CLI is synchronous; the server runs in the test's event loop, so each command runs
in a thread (`asyncio.to_thread`) while the loop keeps serving and, where a run has to
move along, the test leases and completes it over the real WorkerService.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import sys

import pytest
import yaml

from batchyard.client.cli.main import main
from batchyard.v1 import run_pb2
from batchyard.v1 import run_service_pb2 as pb
from tests.client.acting import ActingWorker, create_definition, watch_stderr
from tests.client.cli_runner import Cli as CliRunner
from tests.server.helpers import make_queue

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Cli(CliRunner):
    """Runs `batchyard runs ...` against one server and captures its output."""

    def __init__(self, capsys, target):
        super().__init__(capsys, target, "runs", "--request-timeout")

    async def submit(self, *argv):
        """Submit and return the new run's uuid."""
        code, out, err = await self("submit", *argv)
        assert (code, err) == (0, ""), err
        return submitted_uuid(out)


def submitted_uuid(out):
    found = re.match(rf"submitted run ({UUID}) \(", out)
    assert found, out
    return found.group(1)


def key_values(out):
    return dict(re.split(r":\s+", line, maxsplit=1) for line in out.splitlines() if ": " in line)


@pytest.fixture
def cli(capsys, target):
    return Cli(capsys, target)


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


@pytest.fixture
async def hello(definitions):
    return await create_definition(definitions, "hello")


async def get_run(runs, run_id):
    return (await runs.GetRun(pb.GetRunRequest(run=run_id))).run


# ---------------------------------------------------------------- submit


async def test_submit_with_overrides_payload_file_and_request_id(
    cli, hello, runs, worker, tmp_path, monkeypatch, queues
):
    await make_queue(queues, "batch")
    payload = tmp_path / "input.bin"
    payload.write_bytes(b"\x00payload\xff")
    monkeypatch.setenv("FROM_CALLER", "caller's value")
    code, out, err = await cli(
        "submit",
        "hello",
        "--arg=--day",
        "--arg",
        "2024-05-01",
        "--env",
        "MODE=full",
        "--env",
        "FROM_CALLER",
        "--secret-env",
        "TOKEN=s3cret",
        "--timeout",
        "90",
        "--retries",
        "2",
        "--queue",
        "batch",
        "--priority",
        "-5",
        "--payload-file",
        str(payload),
        "--request-id",
        "etl-2024-05-01",
    )
    assert (code, err) == (0, "")
    assert re.fullmatch(rf"submitted run ({UUID}) \(hello v1\)\n", out), out
    run_id = submitted_uuid(out)

    run = await get_run(runs, run_id)
    assert run.definition_uuid == hello.uuid
    assert list(run.config.args) == ["--day", "2024-05-01"]
    assert dict(run.config.env) == {"MODE": "full", "FROM_CALLER": "caller's value"}
    assert list(run.config.secret_env_names) == ["TOKEN"]
    assert run.config.timeout.seconds == 90
    assert run.config.retry_strategy.num_retries == 2
    assert not run.config.retry_strategy.HasField("delay_between_retries")
    assert (run.config.queue, run.config.priority) == ("batch", -5)
    assert (run.payload_size, run.request_id) == (9, "etl-2024-05-01")

    leased = await worker.lease("batch")
    assert leased.run == run_id
    assert leased.payload == b"\x00payload\xff"
    assert leased.config.secret_env["TOKEN"] == "s3cret"

    # The same request id again: the same run, nothing new.
    code, out, err = await cli("submit", "hello", "--request-id", "etl-2024-05-01")
    assert code == 0
    assert submitted_uuid(out) == run_id
    assert "was used before" in err
    listed = await runs.ListRuns(pb.ListRunsRequest())
    assert [r.uuid for r in listed.runs] == [run_id]


async def test_submit_keeps_the_definitions_config_without_overrides(cli, hello, runs):
    run_id = await cli.submit("hello", "--payload", "héllo")
    run = await get_run(runs, run_id)
    assert list(run.config.args) == ["from", "definition"]
    assert run.config.queue == "default"
    assert run.payload_size == len("héllo".encode())
    assert run.status == run_pb2.RUN_STATUS_PENDING


async def test_submit_payload_from_stdin(cli, hello, worker, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"line 1\nline 2\n")))
    run_id = await cli.submit("hello", "--payload-file", "-")
    leased = await worker.lease()
    assert (leased.run, leased.payload) == (run_id, b"line 1\nline 2\n")


async def test_submit_of_a_missing_definition(cli):
    code, out, err = await cli("submit", "nope")
    assert (code, out) == (1, "")
    assert err == "error: definition 'nope' not found\n"


@pytest.mark.parametrize(
    ("option", "field"),
    [
        (["--timeout", "8d"], "overrides.timeout"),
        (["--priority", "5000"], "overrides.priority"),
        (["--retries", "1000"], "overrides.retry_strategy.num_retries"),
        (["--queue", "no spaces"], "overrides.queue"),
    ],
)
async def test_submit_with_an_invalid_override_names_the_field(cli, hello, runs, option, field):
    code, out, err = await cli("submit", "hello", *option)
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith("error: ")
    assert any(line.startswith(f"  {field}: ") for line in lines), err
    assert not (await runs.ListRuns(pb.ListRunsRequest())).runs


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--wait-timeout", "5"], "--wait-timeout needs --wait"),
        (["--payload-file", "/nonexistent/input.json"], "cannot read /nonexistent/input.json"),
        (["--secret-env", "BATCHYARD_TEST_UNSET_VAR"], "$BATCHYARD_TEST_UNSET_VAR is not set"),
    ],
)
async def test_submit_usage_errors(offline_cli, argv, expected):
    code, out, err = await offline_cli("submit", "hello", *argv)
    assert (code, out) == (2, "")
    assert expected in err


async def test_submit_too_large_a_payload_is_a_usage_error(offline_cli, tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1024 * 1024 + 1))
    code, _, err = await offline_cli("submit", "hello", "--payload-file", str(big))
    assert code == 2
    assert "at most 1 MiB" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--timeout", "soon"],
        ["--timeout", "0"],
        ["--retries", "-1"],
        ["--env", "=x"],
        ["--payload", "a", "--payload-file", "b"],
    ],
)
def test_submit_bad_option_values_are_rejected_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(["runs", "submit", "hello", *argv])
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


# ---------------------------------------------------------------- submit --wait


async def test_wait_succeeded_exits_0_after_showing_progress(cli, hello, worker, monkeypatch):
    stderr = watch_stderr(monkeypatch)
    waiting = asyncio.create_task(cli("submit", "hello", "--wait", "--wait-timeout", "60"))
    await stderr.wait_for(": pending (recently submitted)\n")  # the wait has begun
    leased = await worker.lease()
    await worker.progress(leased, 40)
    await stderr.wait_for(f"Run {leased.run}: running (attempt 1, 40%)\n")
    await worker.succeed(leased)

    code, out, err = await waiting
    assert code == 0
    assert out.splitlines() == [
        f"submitted run {leased.run} (hello v1)",
        f"run {leased.run} succeeded",
    ]
    states = [line.split(": ", 1)[1] for line in err.splitlines()]
    assert states[0] == "pending (recently submitted)"
    assert states[-2:] == ["running (attempt 1, 40%)", "succeeded"]
    assert len(states) == len(set(states))  # one line per change
    assert all(re.match(rf"\d+:\d\d:\d\d Run {leased.run}: ", line) for line in err.splitlines())


async def test_wait_failed_exits_1_with_the_last_attempts_account(cli, hello, worker):
    waiting = asyncio.create_task(cli("submit", "hello", "--wait", "--wait-timeout", "60"))
    leased = await worker.lease()
    await worker.fail(leased, exit_code=3, message="boom: no input")

    code, out, err = await waiting
    assert code == 1
    assert out.splitlines()[1:] == [
        f"run {leased.run} failed: non-zero exit code",
        "  attempt 1 on t: exit code 3: boom: no input",
    ]
    assert err.splitlines()[-1].endswith(f"Run {leased.run}: failed (non-zero exit code)")


async def test_wait_cancelled_exits_4(cli, hello, worker, runs, monkeypatch):
    stderr = watch_stderr(monkeypatch)
    waiting = asyncio.create_task(cli("submit", "hello", "--wait", "--wait-timeout", "60"))
    leased = await worker.lease()
    await runs.CancelRun(pb.CancelRunRequest(run=leased.run, reason="wrong day"))
    await stderr.wait_for(f"Run {leased.run}: running (attempt 1, cancel requested)\n")
    assert await worker.progress(leased, 10) is True
    await worker.stopped(leased)

    code, out, err = await waiting
    assert code == 4
    assert out.splitlines()[1] == f"run {leased.run} cancelled"
    assert err.splitlines()[-1].endswith(f"Run {leased.run}: cancelled")


async def test_wait_timeout_exits_5_and_the_run_goes_on(cli, hello, runs):
    code, out, err = await cli("submit", "hello", "--wait", "--wait-timeout", "0.3")
    assert code == 5
    run_id = submitted_uuid(out)
    assert f"run {run_id} is pending (recently submitted) and goes on" in err
    assert (await get_run(runs, run_id)).status == run_pb2.RUN_STATUS_PENDING


async def test_wait_with_json_output_prints_the_final_run(cli, hello, worker):
    waiting = asyncio.create_task(
        cli("submit", "hello", "--wait", "--wait-timeout", "60", "-o", "json")
    )
    leased = await worker.lease()
    await worker.succeed(leased)
    code, out, _ = await waiting
    assert code == 0
    final = json.loads(out)
    assert (final["uuid"], final["status"]) == (leased.run, "RUN_STATUS_SUCCEEDED")
    assert final["attempts"][0]["workerId"] == "t"


# ---------------------------------------------------------------- get


async def test_get_a_pending_run(cli, hello):
    run_id = await cli.submit("hello", "--request-id", "r-1", "--payload", "abc")
    code, out, err = await cli("get", run_id)
    assert (code, err) == (0, "")
    fields = key_values(out)
    assert fields["UUID"] == run_id
    assert fields["Status"] == "pending"
    assert fields["Reason"] == "recently submitted"
    assert fields["Definition"] == "hello@1"
    assert fields["Args"] == "from definition"
    assert fields["Queue"] == "default"
    assert fields["Progress"] == "0%"
    assert fields["Payload"] == "3 bytes"
    assert fields["Request id"] == "r-1"
    assert "ago" in fields["Submitted"] or "just now" in fields["Submitted"]
    assert fields["Started"] == fields["Ended"] == "-"
    assert "Attempts: none yet" in out


async def test_get_shows_attempts_and_the_outcome(cli, hello, worker):
    run_id = await cli.submit("hello", "--retries", "1", "--timeout", "1m")
    first = await worker.lease()
    await worker.progress(first, 40)
    code, out, _ = await cli("get", run_id)
    fields = key_values(out)
    assert (fields["Status"], fields["Progress"], fields["Timeout"]) == ("running", "40%", "1m")
    assert fields["Retries"] == "1, 1m apart"

    await worker.fail(first, exit_code=3, message="boom")
    code, out, _ = await cli("get", run_id)
    assert code == 0
    fields = key_values(out)
    assert (fields["Status"], fields["Reason"]) == ("pending", "waiting for retry")
    assert fields["Retries used"] == "1"
    assert "Next attempt" in fields
    header, row = out.split("Attempts:\n", 1)[1].splitlines()
    assert header.split() == [
        "#",
        "WORKER",
        "STARTED",
        "ENDED",
        "STATUS",
        "REASON",
        "EXIT",
        "CODE",
        "RETRY",
        "MEMORY",
        "CPU",
        "MESSAGE",
    ]
    assert row.split()[:2] == ["1", "t"]
    assert "failed  non-zero exit code  3" in row
    assert row.split()[-4:] == ["job", "-", "-", "boom"]  # retried: job; nothing measured


@pytest.mark.parametrize("fmt", ["json", "yaml"])
async def test_get_as_data(cli, hello, fmt):
    run_id = await cli.submit("hello")
    code, out, _ = await cli("get", run_id, "-o", fmt)
    assert code == 0
    got = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert got["uuid"] == run_id
    assert got["status"] == "RUN_STATUS_PENDING"
    assert got["definitionName"] == "hello"


async def test_get_unknown_and_malformed_ids(cli):
    code, out, err = await cli("get", "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b")
    assert (code, out) == (1, "")
    assert "not found" in err
    code, _, err = await cli("get", "not-a-uuid")
    assert code == 1
    assert "  run: not a valid run uuid" in err.splitlines()


# ---------------------------------------------------------------- list


async def test_list_table_filters_and_paging(cli, definitions, worker):
    await create_definition(definitions, "hello")
    await create_definition(definitions, "other")
    submitted = [await cli.submit(name) for name in ("hello", "other", "hello", "hello")]
    newest_first = submitted[::-1]
    first = await worker.lease()  # the queue is served oldest first (equal priority)
    assert first.run == submitted[0]
    await worker.fail(first)

    code, out, err = await cli("list")
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == [
        "UUID", "DEFINITION", "STATUS", "REASON", "ATTEMPTS", "SUBMITTED", "ENDED"
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == newest_first
    failed = rows[-1]
    assert failed.split()[1:3] == ["hello@1", "failed"]
    assert "non-zero exit code  1" in failed
    assert rows[0].split()[1:5] == ["hello@1", "pending", "recently", "submitted"]
    assert rows[0].endswith("-")  # not ended

    code, out, err = await cli("list", "--status", "failed", "-o", "json")
    assert code == 0
    assert [r["uuid"] for r in json.loads(out)] == [submitted[0]]

    code, out, _ = await cli(
        "list", "--status", "pending,failed", "--definition", "hello", "-o", "json"
    )
    assert [r["uuid"] for r in json.loads(out)] == [submitted[3], submitted[2], submitted[0]]

    code, out, _ = await cli("list", "--status", "running", "--status", "succeeded")
    assert (code, out) == (0, "")

    code, out, err = await cli("list", "--limit", "3", "--page-size", "2", "-o", "yaml")
    assert [r["uuid"] for r in yaml.safe_load(out)] == newest_first[:3]
    assert "there are more" in err

    code, out, err = await cli("list", "--all", "--page-size", "1", "-o", "json")
    assert [r["uuid"] for r in json.loads(out)] == newest_first
    assert err == ""


async def test_list_nothing(cli):
    code, out, err = await cli("list")
    assert (code, out) == (0, "")
    assert "no runs found" in err
    code, out, _ = await cli("list", "-o", "json")
    assert (code, json.loads(out)) == (0, [])


def test_list_unknown_status_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["runs", "list", "--status", "pending,done"])
    assert exited.value.code == 2
    assert "unknown status 'done'" in capsys.readouterr().err


# ---------------------------------------------------------------- cancel and delete


async def test_cancel_a_pending_run(cli, hello, runs):
    run_id = await cli.submit("hello")
    code, out, err = await cli("cancel", run_id, "--reason", "wrong day")
    assert (code, out, err) == (0, f"run {run_id}: cancelled\n", "")
    run = await get_run(runs, run_id)
    assert run.status == run_pb2.RUN_STATUS_CANCELLED
    assert "wrong day" in run.message

    code, out, err = await cli("cancel", run_id)
    assert (code, out) == (1, "")
    assert "only pending or running runs can be cancelled" in err


async def test_cancel_a_running_run_asks_its_worker(cli, hello, worker):
    run_id = await cli.submit("hello")
    leased = await worker.lease()
    code, out, _ = await cli("cancel", run_id, "-o", "json")
    assert code == 0
    got = json.loads(out)
    assert (got["status"], got["cancelRequested"]) == ("RUN_STATUS_RUNNING", True)

    code, out, _ = await cli("cancel", run_id)
    assert (code, out) == (0, f"run {run_id}: cancel requested; the worker is stopping it\n")
    assert await worker.progress(leased, 50) is True


async def test_delete_only_finished_runs(cli, hello, worker):
    run_id = await cli.submit("hello")
    code, out, err = await cli("delete", run_id)
    assert (code, out) == (1, "")
    assert "only finished runs can be deleted" in err

    await worker.succeed(await worker.lease())
    code, out, err = await cli("delete", run_id)
    assert (code, out, err) == (0, f"deleted run {run_id}\n", "")
    code, _, err = await cli("get", run_id)
    assert code == 1
    assert "not found" in err


# ---------------------------------------------------------------- the rest


@pytest.fixture
def closed_target():
    """An address on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def offline_cli(capsys, closed_target):
    return Cli(capsys, closed_target)


@pytest.mark.parametrize("argv", [["submit", "hello"], ["list"], ["get", "x"]])
async def test_unreachable_server(offline_cli, closed_target, argv):
    code, out, err = await offline_cli(*argv)
    assert (code, out) == (3, "")
    assert f"cannot reach the Batchyard server at {closed_target}" in err


@pytest.mark.parametrize("command", ["submit", "get", "list", "watch", "cancel", "delete"])
def test_every_command_has_help_with_examples(capsys, command):
    with pytest.raises(SystemExit) as exited:
        main(["runs", command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"batchyard runs {command}" in out
    assert "--server" in out


def test_submit_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["runs", "submit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for code, meaning in [
        ("0", "the run succeeded"),
        ("1", "the run failed"),
        ("4", "the run was cancelled"),
        ("5", "the run goes on"),
    ]:
        assert re.search(rf" {code} [^0-9]*{meaning}", out), (code, meaning)


def test_runs_without_a_command_prints_help(capsys):
    assert main(["runs"]) == 2
    assert "COMMAND" in capsys.readouterr().err
