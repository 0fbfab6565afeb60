"""Executing one attempt with real subprocesses: outcomes, environment, timeout, stop."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from batchyard.v1 import run_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.outcome import StopReason
from tests.worker.jobs import MemorySink, python_job, run_job, sh, shell_job, wait_for


async def test_exit_zero_succeeds(options: ExecutionOptions) -> None:
    result = await run_job(shell_job("true"), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert result.outcome.reason == run_pb2.RUN_REASON_UNSPECIFIED
    assert result.outcome.exit_code == 0
    assert result.outcome.reportable


async def test_non_zero_exit_fails_with_the_exit_code(options: ExecutionOptions) -> None:
    result = await run_job(sh("echo failing >&2; exit 3"), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert result.outcome.exit_code == 3
    assert result.outcome.message == "exited with code 3: failing"
    assert result.sink.lines_of("stderr") == ["failing"]


async def test_death_by_signal_fails_with_128_plus_the_signal(options: ExecutionOptions) -> None:
    result = await run_job(sh("kill -SEGV $$"), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert result.outcome.exit_code == 128 + 11
    assert result.outcome.message == "killed by signal SIGSEGV (exit code 139)"


async def test_args_reach_the_program_verbatim(options: ExecutionOptions) -> None:
    args = ["two words", "$HOME", "; rm -rf /", "'quoted'", "", "-x"]
    result = await run_job(
        python_job("import json, sys; print(json.dumps(sys.argv[1:]))", *args), options
    )
    assert json.loads(result.sink.lines_of("stdout")[0]) == args


ENV_PROBE = """
import json, os
print(json.dumps(dict(os.environ)))
print(os.getcwd())
"""


async def test_environment_is_the_jobs_not_the_workers(
    options: ExecutionOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_ONLY_SECRET", "do-not-leak")
    config = python_job(ENV_PROBE, env={"COLOR": "blue"})
    config.secret_env["API_KEY"] = "s3cret"
    result = await run_job(config, options, run="run-env", attempt=2)
    env_line, cwd = result.sink.lines_of("stdout")
    env = json.loads(env_line)
    attempt_dir = result.attempt_dir
    assert env["COLOR"] == "blue"
    assert env["API_KEY"] == "***"  # set, and masked in the stored log (test_masking.py)
    assert env["BATCHYARD_RUN_ID"] == "run-env"
    assert env["BATCHYARD_ATTEMPT"] == "2"
    # No payload: the shared empty file, not one per attempt.
    empty = Path(env["BATCHYARD_PAYLOAD_PATH"])
    assert empty == attempt_dir.parent / ".empty-payload" and empty.read_bytes() == b""
    assert env["BATCHYARD_OUTPUT_DIR"] == str(attempt_dir / "output")
    assert env["HOME"] == str(attempt_dir)
    assert "WORKER_ONLY_SECRET" not in env
    assert set(env) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PYTHONUNBUFFERED",
        "COLOR",
        "API_KEY",
        "BATCHYARD_RUN_ID",
        "BATCHYARD_ATTEMPT",
        "BATCHYARD_PAYLOAD_PATH",
        "BATCHYARD_OUTPUT_DIR",
        "LC_CTYPE",
    }
    assert Path(cwd) == attempt_dir


PAYLOAD_PROBE = """
import os, sys
data = open(os.environ["BATCHYARD_PAYLOAD_PATH"], "rb").read()
print(len(data), data.hex())
with open(os.path.join(os.environ["BATCHYARD_OUTPUT_DIR"], "result.txt"), "w") as f:
    f.write("made by the job")
"""


async def test_payload_file_and_output_dir(options: ExecutionOptions) -> None:
    payload = b'{"n": 1}\x00\xff'
    result = await run_job(python_job(PAYLOAD_PROBE), options, payload=payload)
    assert result.sink.lines_of("stdout") == [f"{len(payload)} {payload.hex()}"]
    assert result.output_files == {"result.txt": b"made by the job"}


async def test_empty_payload_is_an_empty_file(options: ExecutionOptions) -> None:
    result = await run_job(python_job(PAYLOAD_PROBE), options)
    assert result.sink.lines_of("stdout") == ["0 "]


async def test_progress_is_visible_while_running_and_in_the_outcome(
    options: ExecutionOptions, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    script = f"""
import os, time
print("::progress 30")
while not os.path.exists({str(go)!r}):
    time.sleep(0.01)
print("::progress 75")
print("::progress 200")
"""

    async def during(execution: Execution, sink: MemorySink) -> None:
        await wait_for(lambda: execution.progress == 30, "progress 30")
        go.touch()

    result = await run_job(python_job(script), options, during=during)
    assert result.outcome.progress == 75
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED


async def test_timeout_kills_a_job_that_ignores_sigterm(options: ExecutionOptions) -> None:
    result = await run_job(sh("trap '' TERM; echo started; sleep 30", timeout=0.3), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_TIMEOUT
    assert result.outcome.exit_code is None
    assert result.outcome.message == "killed after timeout 0.3s"
    system = result.sink.system()
    assert any("sent SIGTERM" in line for line in system)
    assert "sent SIGKILL to the job's process group" in system


async def test_timeout_lets_a_cooperative_job_exit_on_sigterm(options: ExecutionOptions) -> None:
    script = "trap 'echo cleaning up; exit 0' TERM; echo started; sleep 30 & wait"
    result = await run_job(sh(script, timeout=0.3), options)
    assert result.outcome.reason == run_pb2.RUN_REASON_TIMEOUT
    assert "cleaning up" in result.sink.lines_of("stdout")
    assert "sent SIGKILL to the job's process group" not in result.sink.system()


def stop_when_started(reason: StopReason) -> Callable[[Execution, MemorySink], Awaitable[None]]:
    """A ``during`` hook: once the job printed "started", stop it for ``reason``."""

    async def during(execution: Execution, sink: MemorySink) -> None:
        await wait_for(lambda: "started" in sink.lines_of("stdout"), "the job to start")
        execution.stop(reason)

    return during


async def test_cancel_stops_the_job_as_cancelled(options: ExecutionOptions) -> None:
    during = stop_when_started(StopReason.CANCEL)
    result = await run_job(sh("echo started; sleep 30"), options, during=during)
    assert result.outcome.status == run_pb2.RUN_STATUS_CANCELLED
    assert result.outcome.reason == run_pb2.RUN_REASON_CANCELLED_BY_USER
    assert result.outcome.exit_code is None
    assert result.outcome.reportable


async def test_lease_lost_kills_at_once_without_grace(
    options: ExecutionOptions,
) -> None:
    patient = ExecutionOptions(**{**options.__dict__, "kill_grace": 60.0})
    during = stop_when_started(StopReason.LEASE_LOST)
    result = await run_job(sh("trap '' TERM; echo started; sleep 30"), patient, during=during)
    assert result.outcome.stopped is StopReason.LEASE_LOST
    assert not result.outcome.reportable
    system = result.sink.system()
    assert not any("SIGTERM" in line for line in system)
    assert "sent SIGKILL to the job's process group" in system


async def test_lease_lost_during_the_grace_period_kills_at_once(
    options: ExecutionOptions,
) -> None:
    patient = ExecutionOptions(**{**options.__dict__, "kill_grace": 60.0})

    async def during(execution: Execution, sink: MemorySink) -> None:
        await wait_for(lambda: "started" in sink.lines_of("stdout"), "the job to start")
        execution.stop(StopReason.CANCEL)
        await wait_for(lambda: any("sent SIGTERM" in s for s in sink.system()), "SIGTERM")
        execution.stop(StopReason.LEASE_LOST)

    result = await run_job(sh("trap '' TERM; echo started; sleep 30"), patient, during=during)
    assert result.outcome.stopped is StopReason.CANCEL  # the first reason is what ended it
    assert "sent SIGKILL to the job's process group" in result.sink.system()


async def test_shutdown_stop_is_not_reported(options: ExecutionOptions) -> None:
    during = stop_when_started(StopReason.SHUTDOWN)
    result = await run_job(sh("echo started; sleep 30"), options, during=during)
    assert result.outcome.stopped is StopReason.SHUTDOWN
    assert result.outcome.status == run_pb2.RUN_STATUS_PENDING
    assert not result.outcome.reportable


async def test_stop_before_start_never_starts_the_job(
    options: ExecutionOptions, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    sink = MemorySink()
    spec = AttemptSpec("run-early", 1, shell_job("touch", str(marker)))
    async with Execution(spec, options, sink=sink) as execution:
        execution.stop(StopReason.CANCEL)
        outcome = await execution.run()
    assert outcome.status == run_pb2.RUN_STATUS_CANCELLED
    assert not marker.exists()


async def test_an_execution_runs_once(options: ExecutionOptions) -> None:
    async with Execution(
        AttemptSpec("run-once", 1, shell_job("true")), options, sink=MemorySink()
    ) as execution:
        await execution.run()
        with pytest.raises(RuntimeError):
            await execution.run()


async def test_a_failure_message_quotes_the_last_stderr_lines(options: ExecutionOptions) -> None:
    script = "echo out; echo first >&2; echo second >&2; echo third >&2; echo last >&2; exit 3"
    async with Execution(AttemptSpec("run-log", 1, sh(script)), options) as execution:
        outcome = await execution.run()
    assert outcome.exit_code == 3
    assert outcome.message == "exited with code 3: second | third | last"


async def test_a_success_message_quotes_nothing(options: ExecutionOptions) -> None:
    async with Execution(AttemptSpec("run-ok", 1, sh("echo err >&2")), options) as execution:
        outcome = await execution.run()
    assert outcome.message == "exited with code 0"


async def test_python_interpreter_is_the_configured_one(options: ExecutionOptions) -> None:
    result = await run_job(python_job("import sys; print(sys.executable)"), options)
    assert result.sink.lines_of("stdout") == [sys.executable]
