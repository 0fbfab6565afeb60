"""`batchyard logs ...` against the real server, the test acting as the worker.

The CLI is synchronous; each command runs in a thread (`asyncio.to_thread`) while the
test's event loop serves and appends log lines over the real WorkerService.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.duration_pb2 import Duration

from batchyard.client.cli import logs as logs_command
from batchyard.client.cli.main import main
from batchyard.client.sync.logs import LogsClient
from batchyard.v1 import job_pb2, log_pb2
from batchyard.v1 import run_service_pb2 as rpb
from tests.client.acting import (
    ERROR,
    SYS,
    ActingWorker,
    create_definition,
    log_entry,
    numbered,
    watch_stdout,
)
from tests.client.cli_runner import Cli as CliRunner
from tests.client.test_logs_client import Restartable

RETRY_ONCE = job_pb2.JobConfig(
    type=job_pb2.JOB_TYPE_SHELL,
    source_location="echo",
    retry_strategy=job_pb2.RetryStrategy(num_retries=1, delay_between_retries=Duration()),
)
MISSING = "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b"


class Cli(CliRunner):
    """Runs `batchyard logs ...` against one server and captures its output."""

    def __init__(self, capsys, target):
        super().__init__(capsys, target, "logs")


@pytest.fixture
def cli(capsys, target):
    return Cli(capsys, target)


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


async def submitted(definitions, runs, config=None):
    if config is None:
        await create_definition(definitions, "job")
    else:
        await create_definition(definitions, "job", config)
    return (await runs.SubmitRun(rpb.SubmitRunRequest(definition="job"))).run.uuid


def text_line(attempt, seq, stream, level, message):
    """How `logs` prints an entry made by `log_entry(seq, ...)` (read at 12:00:00 UTC
    plus seq * 1.001 s)."""
    when = datetime(2024, 5, 1, 12, tzinfo=UTC) + timedelta(milliseconds=seq * 1001)
    clock = when.strftime("%H:%M:%S.%f")[:-3]
    return f"{clock} [{attempt}] {stream} {level.ljust(7)} {message}"


def numbered_lines(attempt, first, last, message="{stream} line {seq}"):
    """What `logs` prints for `numbered(first, last, message)`."""
    lines = []
    for seq in range(first, last + 1):
        stream, level = ("stderr", "WARNING") if seq % 3 == 0 else ("stdout", "INFO")
        lines.append(text_line(attempt, seq, stream, level, message.format(seq=seq, stream=stream)))
    return lines


async def two_attempts(definitions, runs, worker):
    """A finished run: attempt 1 printed 19 lines and the worker noted its exit code;
    attempt 2 printed 15 lines, the last one an error."""
    run_id = await submitted(definitions, runs, RETRY_ONCE)
    first = await worker.lease()
    await worker.append(first, numbered(1, 10), numbered(11, 19))
    await worker.append(first, [log_entry(20, SYS, "exit code 3")])
    await worker.fail(first)
    second = await worker.lease()
    last = log_entry(15, message="done: 3 errors", level=ERROR)
    await worker.append(second, [*numbered(1, 14, "again {seq}"), last])
    await worker.succeed(second)
    return run_id


ATTEMPT_1 = [*numbered_lines(1, 1, 19), text_line(1, 20, "system", "INFO", "exit code 3")]
ATTEMPT_2 = [
    *numbered_lines(2, 1, 14, "again {seq}"),
    text_line(2, 15, "stdout", "ERROR", "done: 3 errors"),
]


# ---------------------------------------------------------------- stored lines


async def test_prints_every_stored_line_exactly_and_in_order(cli, definitions, runs, worker):
    run_id = await two_attempts(definitions, runs, worker)
    code, out, err = await cli(run_id)
    assert (code, err) == (0, "")
    assert out.splitlines()[:4] == [
        "12:00:01.001 [1] stdout INFO    stdout line 1",
        "12:00:02.002 [1] stdout INFO    stdout line 2",
        "12:00:03.003 [1] stderr WARNING stderr line 3",
        "12:00:04.004 [1] stdout INFO    stdout line 4",
    ]
    assert out.splitlines() == ATTEMPT_1 + ATTEMPT_2
    assert "\x1b[" not in out  # no colour when not on a terminal


async def test_json_lines(cli, definitions, runs, worker):
    run_id = await two_attempts(definitions, runs, worker)
    code, out, _ = await cli(run_id, "-o", "json", "--attempt", "1")
    assert code == 0
    got = [json.loads(line) for line in out.splitlines()]
    assert len(got) == 20
    assert got[2] == {
        "run": run_id,
        "attempt": 1,
        "seq": "3",
        "time": "2024-05-01T12:00:03.003Z",
        "stream": "LOG_STREAM_STDERR",
        "level": "LOG_LEVEL_WARNING",
        "message": "stderr line 3",
    }
    assert [int(e["seq"]) for e in got] == list(range(1, 21))
    assert got[-1]["stream"] == "LOG_STREAM_SYSTEM"


async def test_filters(cli, definitions, runs, worker):
    run_id = await two_attempts(definitions, runs, worker)

    async def lines(*options):
        code, out, err = await cli(run_id, *options)
        assert (code, err) == (0, "")
        return out.splitlines()

    everything = ATTEMPT_1 + ATTEMPT_2
    warnings = [line for line in everything if " WARNING " in line or " ERROR " in line]
    assert await lines("--level", "warning") == warnings
    assert await lines("--level", "ERROR") == [ATTEMPT_2[-1]]
    assert await lines("--stream", "system") == [ATTEMPT_1[-1]]
    assert await lines("--stream", "stderr") == [line for line in everything if " stderr " in line]
    assert await lines("--stream", "stdout,system") == await lines(
        "--stream", "stdout", "--stream", "system"
    )
    assert await lines("--stream", "stdout,system") == [
        line for line in everything if " stderr " not in line
    ]
    assert await lines("--attempt", "2") == ATTEMPT_2
    assert await lines("--attempt", "2", "--level", "warning", "--stream", "stdout") == [
        ATTEMPT_2[-1]
    ]
    assert await lines("--attempt", "3") == []


# ---------------------------------------------------------------- --follow


async def test_follow_started_before_the_lines_prints_each_once_and_ends_with_the_run(
    cli, definitions, runs, worker, monkeypatch
):
    run_id = await submitted(definitions, runs)
    stdout = watch_stdout(monkeypatch)
    following = asyncio.create_task(cli(run_id, "--follow"))
    leased = await worker.lease()
    await worker.append(leased, numbered(1, 30))
    await stdout.wait_for("stdout line 29\n")  # printed live, before the rest exists
    await worker.append(leased, numbered(31, 60), numbered(61, 90))
    await worker.append(leased, [log_entry(91, SYS, "exit code 0")])
    await worker.succeed(leased)

    code, out, err = await asyncio.wait_for(following, 30)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        *numbered_lines(1, 1, 90),
        text_line(1, 91, "system", "INFO", "exit code 0"),
    ]


async def test_follow_with_filters_and_new(cli, definitions, runs, worker):
    run_id = await two_attempts(definitions, runs, worker)
    code, out, _ = await cli(run_id, "-f", "--level", "error")
    assert (code, out.splitlines()) == (0, [ATTEMPT_2[-1]])
    code, out, _ = await cli(run_id, "--follow", "--attempt", "1", "--stream", "system")
    assert (code, out.splitlines()) == (0, [ATTEMPT_1[-1]])
    code, out, _ = await cli(run_id, "--follow", "--new")  # ended: nothing new will come
    assert (code, out) == (0, "")
    code, out, _ = await cli(run_id, "--follow", "--since-start", "-o", "json")
    assert [json.loads(line)["message"] for line in out.splitlines()][-1] == "done: 3 errors"


async def test_follow_survives_server_restarts(server_factory, capsys, monkeypatch):
    srv = await Restartable(server_factory).start()
    try:
        run_id = await submitted(srv.definitions, srv.runs)
        leased = await srv.worker.lease()
        stdout = watch_stdout(monkeypatch)
        cli = Cli(capsys, srv.target)
        following = asyncio.create_task(cli(run_id, "--follow", "--reconnect-timeout", "60"))
        for first in (1, 41, 81):
            await srv.worker.append(leased, numbered(first, first + 39))
            await stdout.wait_for(f" line {first + 39}\n")
            if first < 81:
                await srv.restart()  # the command's stream is cut; it resumes
        await srv.worker.succeed(leased)
        code, out, err = await asyncio.wait_for(following, 30)
    finally:
        await srv.close()
    assert (code, err) == (0, "")
    assert out.splitlines() == numbered_lines(1, 1, 120)


# ---------------------------------------------------------------- terminals and Ctrl-C


async def test_colour_by_level_on_a_terminal_only(cli, definitions, runs, worker, monkeypatch):
    run_id = await two_attempts(definitions, runs, worker)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    watch_stdout(monkeypatch, tty=True)
    code, out, _ = await cli(run_id, "--attempt", "2")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == ATTEMPT_2[0]  # INFO stays plain
    assert lines[2] == "12:00:03.003 [2] stderr \x1b[33mWARNING again 3\x1b[0m"
    assert lines[-1].endswith("\x1b[1;31mERROR   done: 3 errors\x1b[0m")

    monkeypatch.setenv("NO_COLOR", "1")
    code, out, _ = await cli(run_id, "--attempt", "2")
    assert out.splitlines() == ATTEMPT_2
    monkeypatch.delenv("NO_COLOR")
    code, out, _ = await cli(run_id, "--attempt", "2", "-o", "json")
    assert "\x1b[" not in out


async def test_ctrl_c_exits_130_quietly(cli, definitions, runs, worker, monkeypatch):
    run_id = await submitted(definitions, runs)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(LogsClient, "follow", interrupted)
    code, out, err = await cli(run_id, "--follow")
    assert (code, out, err) == (130, "", "")


# ---------------------------------------------------------------- errors and help


async def test_unknown_and_malformed_runs(cli):
    for follow in ([], ["--follow"]):
        code, out, err = await cli(MISSING, *follow)
        assert (code, out) == (1, "")
        assert err == f"error: run '{MISSING}' not found\n"
    code, _, err = await cli("not-a-uuid")
    assert code == 1
    assert "  run: not a valid run uuid" in err.splitlines()


@pytest.fixture
def closed_target():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


async def test_unreachable_server_exits_3_at_once(capsys, closed_target):
    code, out, err = await Cli(capsys, closed_target)(MISSING)
    assert (code, out) == (3, "")
    assert f"cannot reach the Batchyard server at {closed_target}" in err


async def test_a_follower_waits_for_an_unreachable_server_saying_so(capsys, closed_target):
    """F4: a follower that starts during an outage waits it out (here up to its
    --reconnect-timeout of 8 s), saying so, instead of giving up at once."""
    code, out, err = await Cli(capsys, closed_target)(
        MISSING, "--follow", "--reconnect-timeout", "8s"
    )
    assert (code, out) == (3, "")
    assert "server unreachable, retrying (0:00:" in err
    assert f"cannot reach the Batchyard server at {closed_target}" in err


async def test_usage_errors(cli):
    code, out, err = await cli(MISSING, "--new")
    assert (code, out, err) == (2, "", "error: --new needs --follow\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["--level", "loud"],
        ["--stream", "stdin"],
        ["--attempt", "0"],
        ["--follow", "--new", "--since-start"],
        ["-o", "csv"],
    ],
)
def test_bad_options_are_rejected_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(["logs", MISSING, *argv])
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_help_has_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["logs", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "batchyard logs " in out
    assert "--server" in out
    assert "--follow" in out
    text = " ".join(out.split())
    for code, meaning in [("0", "printed"), ("1", "no such run"), ("130", "interrupted")]:
        assert re.search(rf" {code} [^0-9]*{meaning}", text), (code, meaning)


def test_stream_list_type():
    assert logs_command.stream_list("stdout, system") == [
        log_pb2.LOG_STREAM_STDOUT,
        log_pb2.LOG_STREAM_SYSTEM,
    ]
