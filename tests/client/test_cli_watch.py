"""`batchyard runs watch` and `runs submit --wait --follow` against the real server, the
test acting as the worker: state lines, the live progress line on a terminal, the log
while waiting, and exit codes by outcome.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from google.protobuf.duration_pb2 import Duration

from batchyard.client.cli.main import main
from batchyard.client.cli.run_wait import ProgressLine, progress_bar
from batchyard.v1 import job_pb2, run_pb2
from batchyard.v1 import run_service_pb2 as pb
from tests.client.acting import (
    ERROR,
    SYS,
    ActingWorker,
    create_definition,
    log_entry,
    numbered,
    watch_stderr,
    watch_stdout,
)
from tests.client.test_cli_logs import numbered_lines, text_line
from tests.client.test_cli_runs import UUID, Cli

MISSING = "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b"


@pytest.fixture
def cli(capsys, target):
    return Cli(capsys, target)


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


@pytest.fixture
async def hello(definitions):
    return await create_definition(definitions, "hello")


async def submit(runs):
    return (await runs.SubmitRun(pb.SubmitRunRequest(definition="hello"))).run.uuid


def states(err):
    """The states of the `<elapsed> Run <uuid>: <state>` lines."""
    found = []
    for line in err.splitlines():
        match = re.fullmatch(rf"\d+:\d\d:\d\d Run {UUID}: (.+)", line)
        assert match, line
        found.append(match.group(1))
    return found


# ---------------------------------------------------------------- runs watch


async def test_watch_until_succeeded_exits_0(cli, hello, runs, worker, monkeypatch):
    run_id = await submit(runs)
    stderr = watch_stderr(monkeypatch)
    watching = asyncio.create_task(cli("watch", run_id))
    await stderr.wait_for(f"Run {run_id}: pending (recently submitted)\n")
    leased = await worker.lease()
    await worker.progress(leased, 40)
    await stderr.wait_for(f"Run {run_id}: running (attempt 1, 40%)\n")
    await worker.succeed(leased)

    code, out, err = await watching
    assert code == 0
    assert out == f"run {run_id} succeeded\n"
    got = states(err)
    assert got[0] == "pending (recently submitted)"
    assert got[-2:] == ["running (attempt 1, 40%)", "succeeded"]
    assert len(got) == len(set(got))  # one line per change


async def test_watch_a_failed_run_exits_1(cli, hello, runs, worker):
    run_id = await submit(runs)
    watching = asyncio.create_task(cli("watch", run_id))
    leased = await worker.lease()
    await worker.fail(leased, exit_code=3, message="boom: no input")
    code, out, err = await watching
    assert code == 1
    assert out.splitlines() == [
        f"run {run_id} failed: non-zero exit code",
        "  attempt 1 on t: exit code 3: boom: no input",
    ]
    assert states(err)[-1] == "failed (non-zero exit code)"


async def test_watch_a_cancelled_run_exits_4(cli, hello, runs, worker, monkeypatch):
    run_id = await submit(runs)
    stderr = watch_stderr(monkeypatch)
    watching = asyncio.create_task(cli("watch", run_id, "-o", "json"))
    leased = await worker.lease()
    await runs.CancelRun(pb.CancelRunRequest(run=run_id))
    await stderr.wait_for("cancel requested)\n")
    await worker.stopped(leased)
    code, out, err = await watching
    assert code == 4
    assert json.loads(out)["status"] == "RUN_STATUS_CANCELLED"
    assert states(err)[-1] == "cancelled"


async def test_watch_a_finished_run_shows_it_at_once(cli, hello, runs, worker):
    run_id = await submit(runs)
    await worker.succeed(await worker.lease())
    code, out, err = await cli("watch", run_id, "--wait-timeout", "0.01")
    assert (code, out, states(err)) == (0, f"run {run_id} succeeded\n", ["succeeded"])


async def test_watch_timeout_exits_5(cli, hello, runs):
    run_id = await submit(runs)
    code, _, err = await cli("watch", run_id, "--wait-timeout", "0.3")
    assert code == 5
    assert f"run {run_id} is pending (recently submitted) and goes on" in err


async def test_watch_an_unknown_run_exits_1(cli):
    code, out, err = await cli("watch", MISSING, "--follow")
    assert (code, out, err) == (1, "", f"error: run '{MISSING}' not found\n")


async def test_watch_follow_with_json_prints_the_log_on_stderr(cli, hello, runs, worker):
    run_id = await submit(runs)
    watching = asyncio.create_task(cli("watch", run_id, "--follow", "-o", "json"))
    leased = await worker.lease()
    await worker.append(leased, numbered(1, 5))
    await worker.succeed(leased)
    code, out, err = await watching
    assert code == 0
    assert json.loads(out)["status"] == "RUN_STATUS_SUCCEEDED"  # stdout: one document
    assert [line for line in err.splitlines() if " line " in line] == numbered_lines(1, 1, 5)


# ---------------------------------------------------------------- submit --wait --follow


async def test_submit_follow_prints_the_log_then_the_outcome(cli, hello, worker, monkeypatch):
    stdout, stderr = watch_stdout(monkeypatch), watch_stderr(monkeypatch)
    waiting = asyncio.create_task(cli("submit", "hello", "--follow"))
    leased = await worker.lease()
    await worker.append(leased, numbered(1, 20))
    await stdout.wait_for("stdout line 20\n")  # streamed while the run goes on
    await worker.progress(leased, 50)
    await stderr.wait_for("running (attempt 1, 50%)\n")  # shown while it runs, not only after
    await worker.append(leased, numbered(21, 40), [log_entry(41, SYS, "exit code 0")])
    await worker.succeed(leased)

    code, out, err = await waiting
    assert code == 0
    assert out.splitlines() == [
        f"submitted run {leased.run} (hello v1)",
        *numbered_lines(1, 1, 40),
        text_line(1, 41, "system", "INFO", "exit code 0"),
        f"run {leased.run} succeeded",
    ]
    got = states(err)  # status on stderr only, one line per change
    assert got[-1] == "succeeded"
    assert "running (attempt 1, 50%)" in got or "running (attempt 1)" in got
    assert "\r" not in err and "\x1b[" not in out + err  # not a terminal: plain lines


async def test_submit_wait_follow_of_a_failing_run_exits_1(cli, hello, worker):
    waiting = asyncio.create_task(cli("submit", "hello", "--wait", "--follow"))
    leased = await worker.lease()
    failure = log_entry(1, message="Error: no input", level=ERROR)
    await worker.append(leased, [failure])
    await worker.fail(leased, exit_code=3, message="boom: no input")
    code, out, _ = await waiting
    assert code == 1
    assert out.splitlines()[1:] == [
        text_line(1, 1, "stdout", "ERROR", "Error: no input"),
        f"run {leased.run} failed: non-zero exit code",
        "  attempt 1 on t: exit code 3: boom: no input",
    ]


async def test_on_a_terminal_a_live_progress_line_with_the_log_above_it(
    cli, hello, worker, monkeypatch
):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    stdout = watch_stdout(monkeypatch, tty=True)
    stderr = watch_stderr(monkeypatch, tty=True)
    waiting = asyncio.create_task(cli("submit", "hello", "--follow"))
    leased = await worker.lease()
    await worker.progress(leased, 40)
    await stderr.wait_for("running (attempt 1, 40%) [########------------]")
    await worker.append(leased, numbered(1, 3))
    await stdout.wait_for("stderr line 3\n")
    await worker.succeed(leased)

    code, out, err = await waiting
    assert code == 0
    run_id = leased.run
    # The state line is rewritten in place: \r, the text, erase to the end of the line.
    assert re.search(
        rf"\r\d+:\d\d:\d\d Run {run_id}: running \(attempt 1, 40%\) "
        r"\[########------------\]\x1b\[K",
        err,
    ), err
    assert "\r\x1b[K" in err  # cleared before a log line is printed above it
    assert re.search(rf"\r\d+:\d\d:\d\d Run {run_id}: succeeded\x1b\[K\n$", err), err
    assert err.count("\n") == 1  # one line, kept at the end
    assert out.splitlines() == [
        f"submitted run {run_id} (hello v1)",
        *numbered_lines(1, 1, 3),
        f"run {run_id} succeeded",
    ]


def test_progress_bar_and_narrow_terminals():
    assert progress_bar(0) == "[--------------------]"
    assert progress_bar(40) == "[########------------]"
    assert progress_bar(100) == "[####################]"
    assert progress_bar(250) == progress_bar(100)

    class Screen:
        def __init__(self):
            self.text = ""

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    line = ProgressLine(Screen())  # type: ignore[arg-type]
    try:
        run = run_pb2.Run(
            uuid=MISSING,
            status=run_pb2.RUN_STATUS_RUNNING,
            progress=55,
            attempts=[run_pb2.Attempt(number=2)],
        )
        line.update(run)
        full = line.text()
        assert full.endswith(f"Run {MISSING}: running (attempt 2, 55%) [###########---------]")
        narrow = line.text(70)
        assert narrow.endswith("Run 0b6f3c1e: running (attempt 2, 55%) [###########---------]")
        assert len(line.text(30)) == 30
    finally:
        line.close()


def test_watch_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["runs", "watch", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "batchyard runs watch" in out
    assert "--server" in out
    text = " ".join(out.split())
    for code, meaning in [
        ("0", "the run succeeded"),
        ("1", "the run failed"),
        ("4", "the run was cancelled"),
        ("5", "the run goes on"),
    ]:
        assert re.search(rf" {code} [^0-9]*{meaning}", text), (code, meaning)


def test_submit_help_shows_follow(capsys):
    with pytest.raises(SystemExit):
        main(["runs", "submit", "--help"])
    out = capsys.readouterr().out
    assert "--follow" in out
    assert "[########------------]" in out


async def test_watch_after_a_retry_shows_the_attempts_it_missed(cli, definitions, runs, worker):
    await create_definition(
        definitions,
        "flaky",
        job_pb2.JobConfig(
            type=job_pb2.JOB_TYPE_SHELL,
            source_location="echo",
            retry_strategy=job_pb2.RetryStrategy(
                num_retries=1, delay_between_retries=Duration(seconds=0)
            ),
        ),
    )
    run_id = (await runs.SubmitRun(pb.SubmitRunRequest(definition="flaky"))).run.uuid
    await worker.fail(await worker.lease(), exit_code=3, message="boom: no input")
    await worker.succeed(await worker.lease())  # the retry, before the watch begins
    code, _out, err = await cli("watch", run_id, "--wait-timeout", "5")
    assert code == 0
    assert "attempt 1: failed (non-zero exit code), exit code 3: boom: no input" in err
