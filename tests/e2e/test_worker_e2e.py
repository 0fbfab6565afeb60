"""Runs through real worker processes: every status and reason, cancel, fencing, shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import textwrap

import pytest

from batchyard.v1 import run_pb2
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e.jobs import define, process_state, read_pids, submit, wait_for, wait_gone
from tests.processes import wait_for_log_events

PROBE = """
import json, os, sys
out = {
    "args": sys.argv[1:],
    "payload": open(os.environ["BATCHYARD_PAYLOAD_PATH"], "rb").read().decode(),
    "env": {
        k: v for k, v in os.environ.items() if k in ("MODE", "TOKEN") or k.startswith("BATCHYARD_")
    },
    "cwd": os.getcwd(),
    "output_dir_exists": os.path.isdir(os.environ["BATCHYARD_OUTPUT_DIR"]),
}
with open(os.environ["REPORT"], "w") as f:
    json.dump(out, f)
print("::progress 100")
"""


def write(workspace, name: str, text: str) -> None:
    (workspace / "jobs").mkdir(exist_ok=True)
    (workspace / "jobs" / name).write_text(textwrap.dedent(text))


def python_job(script: str, **config) -> dict:
    return {
        "type": "JOB_TYPE_PYTHON",
        "source": {"workspace": {"path": "jobs"}},
        "sourceLocation": script,
        **config,
    }


def shell_job(script: str, **config) -> dict:
    return {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh", "args": ["-c", script], **config}


async def test_a_python_job_gets_its_args_env_payload_and_succeeds(
    definitions, runs, workspace, tmp_path, start_worker
):
    write(workspace, "probe.py", PROBE)
    report = tmp_path / "report.json"
    await define(
        definitions,
        "probe",
        python_job(
            "probe.py",
            args=["--day", "monday"],
            env={"MODE": "full", "REPORT": str(report)},
            secretEnv={"TOKEN": "t0k3n"},
        ),
    )
    start_worker()
    run = await submit(runs, "probe", payload="aGVsbG8gcGF5bG9hZA==")
    final = await wait_for(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED, final
    assert final.progress == 100
    assert final.attempts[0].exit_code == 0 and final.attempts[0].worker_id == "w0"
    seen = json.loads(report.read_text())
    assert seen["args"] == ["--day", "monday"]
    assert seen["payload"] == "hello payload"
    assert seen["env"]["MODE"] == "full" and seen["env"]["TOKEN"] == "t0k3n"
    assert seen["env"]["BATCHYARD_RUN_ID"] == run.uuid and seen["env"]["BATCHYARD_ATTEMPT"] == "1"
    assert seen["output_dir_exists"]


async def test_non_zero_exit_is_retried_then_fails_with_the_stderr_tail(
    definitions, runs, start_worker
):
    await define(
        definitions,
        "flaky",
        shell_job(
            "echo 'disk full' >&2; exit 3",
            retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s"},
        ),
    )
    start_worker()
    run = await submit(runs, "flaky")
    final = await wait_for(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED
    assert final.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert [(a.number, a.exit_code) for a in final.attempts] == [(1, 3), (2, 3)]
    assert "disk full" in final.message and final.num_retries_used == 1


async def test_exit_code_rule_stops_retries(definitions, runs, start_worker):
    rules = [{"exitCodes": [42], "action": "EXIT_CODE_ACTION_EXIT"}]
    await define(
        definitions,
        "fatal",
        shell_job(
            "exit 42",
            retryStrategy={"numRetries": 3, "delayBetweenRetries": "0s", "exitCodeRules": rules},
        ),
    )
    start_worker()
    final = await wait_for(runs, (await submit(runs, "fatal")).uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED and len(final.attempts) == 1


async def test_timeout_fails_and_is_retried_only_when_asked(definitions, runs, start_worker):
    await define(definitions, "slow", shell_job("sleep 30", timeout="1s"))
    await define(
        definitions,
        "slow-retried",
        shell_job(
            "sleep 30",
            timeout="1s",
            retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s", "retryOnTimeout": True},
        ),
    )
    start_worker("--slots", "2")
    plain = await submit(runs, "slow")
    retried = await submit(runs, "slow-retried")
    final = await wait_for(runs, plain.uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED and final.reason == run_pb2.RUN_REASON_TIMEOUT
    assert len(final.attempts) == 1 and not final.attempts[0].HasField("exit_code")
    final = await wait_for(runs, retried.uuid)
    assert final.reason == run_pb2.RUN_REASON_TIMEOUT and len(final.attempts) == 2


async def test_source_problems_fail_as_source_unavailable(definitions, runs, start_worker):
    await define(definitions, "missing", python_job("nope.py"))
    start_worker()
    final = await wait_for(runs, (await submit(runs, "missing")).uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED
    assert final.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE


HOLD = "echo $$ >> {pids}; (trap '' TERM; sleep 1000) & echo $! >> {pids}; trap '' TERM; wait"


async def test_cancel_a_running_job_that_ignores_sigterm(definitions, runs, tmp_path, start_worker):
    pids_file = tmp_path / "pids"
    await define(definitions, "stubborn", shell_job(HOLD.format(pids=pids_file)))
    start_worker()
    run = await submit(runs, "stubborn")
    pids = await read_pids(pids_file, 2)
    asked = (await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid, reason="wrong input"))).run
    assert asked.cancel_requested
    final = await wait_for(runs, run.uuid, timeout=30)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED
    assert final.reason == run_pb2.RUN_REASON_CANCELLED_BY_USER
    assert await wait_gone(pids) == [], "the job and its children are gone"


async def test_cancel_a_pending_run_never_runs(definitions, runs, start_worker):
    await define(definitions, "never", shell_job("exit 0"))
    run = await submit(runs, "never")
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    start_worker()
    other = await submit(runs, "never")
    await wait_for(runs, other.uuid)
    final = await wait_for(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_CANCELLED and list(final.attempts) == []


@pytest.mark.server(lease_ttl_seconds=1.5, rescue_interval_seconds=0.2)
async def test_a_paused_worker_is_fenced_off_and_its_job_killed(
    definitions, runs, tmp_path, start_worker
):
    pids_file = tmp_path / "pids"
    no_retries = {"numRetries": 0, "numInfraRetries": 0}
    await define(
        definitions,
        "long",
        shell_job(f"echo $$ >> {pids_file}; sleep 1000", retryStrategy=no_retries),
    )
    paused = start_worker()
    run = await submit(runs, "long")
    (job_pid,) = await read_pids(pids_file, 1)
    paused.send_signal(signal.SIGSTOP)
    lost = await wait_for(
        runs, run.uuid, done=lambda r: r.status != run_pb2.RUN_STATUS_RUNNING, timeout=20
    )
    assert (
        lost.status == run_pb2.RUN_STATUS_FAILED and lost.reason == run_pb2.RUN_REASON_WORKER_LOST
    )
    assert process_state(job_pid) != "Z"
    paused.send_signal(signal.SIGCONT)
    # Refused at its next heartbeat, the worker kills the job at once; the run stays failed.
    assert await wait_gone([job_pid], timeout=20) == []
    final = await wait_for(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED and len(final.attempts) == 1
    assert final.attempts[0].reason == run_pb2.RUN_REASON_WORKER_LOST


@pytest.mark.server(lease_ttl_seconds=1.5, rescue_interval_seconds=0.2)
async def test_kill_9_of_a_worker_leaves_no_process_and_the_run_moves_on(
    definitions, runs, tmp_path, start_worker
):
    pids_file = tmp_path / "pids"
    script = (
        f"echo $$ >> {pids_file}; sleep 1000 & echo $! >> {pids_file}; "
        f"sh -c 'sleep 1000' & echo $! >> {pids_file}; wait"
    )
    await define(
        definitions,
        "tree",
        shell_job(script, retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s"}),
    )
    doomed = start_worker()
    run = await submit(runs, "tree")
    pids = await read_pids(pids_file, 3)
    doomed.kill()
    doomed.wait()
    assert await wait_gone(pids) == [], "nothing of the job outlives its worker"
    start_worker()
    second = await wait_for(runs, run.uuid, done=lambda r: len(r.attempts) == 2, timeout=20)
    assert second.attempts[0].reason == run_pb2.RUN_REASON_WORKER_LOST
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    await wait_for(runs, run.uuid)


async def test_two_workers_share_the_runs_and_each_attempt_runs_once(
    definitions, runs, start_worker
):
    # Long enough that one worker (3 slots) cannot drain all 40 before the other connects.
    await define(definitions, "quick", shell_job("sleep 0.3"))
    start_worker("--slots", "3")
    start_worker("--slots", "3")
    submitted = [(await submit(runs, "quick")).uuid for _ in range(40)]
    finals = [await wait_for(runs, run_id) for run_id in submitted]
    assert all(f.status == run_pb2.RUN_STATUS_SUCCEEDED for f in finals)
    assert all(len(f.attempts) == 1 for f in finals), "no run was leased twice"
    assert {f.attempts[0].worker_id for f in finals} == {"w0", "w1"}


async def test_graceful_shutdown_finishes_short_jobs_and_releases_long_ones(
    definitions, runs, start_worker, tmp_path
):
    await define(definitions, "short", shell_job("sleep 1"))
    await define(definitions, "forever", shell_job("sleep 1000"))
    worker = start_worker("--slots", "2", "--grace", "3")
    short = await submit(runs, "short")
    forever = await submit(runs, "forever")
    await wait_for(runs, forever.uuid, done=lambda r: r.status == run_pb2.RUN_STATUS_RUNNING)
    await wait_for(runs, short.uuid, done=lambda r: r.status == run_pb2.RUN_STATUS_RUNNING)
    # Started by the worker, not only leased by the server: a lease answer still on its way
    # at SIGTERM is dropped and its run waits for the lease to expire (a worker bug, reported).
    await wait_for_log_events(tmp_path / "worker-0.log", "run_leased", worker, count=2)
    worker.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(asyncio.to_thread(worker.wait), 30)
    assert code == 0
    assert (await wait_for(runs, short.uuid)).status == run_pb2.RUN_STATUS_SUCCEEDED
    released = (await runs.GetRun(rpb.GetRunRequest(run=forever.uuid))).run
    assert released.status == run_pb2.RUN_STATUS_PENDING
    assert released.reason == run_pb2.RUN_REASON_IN_QUEUE
    assert released.attempts[0].status == run_pb2.RUN_STATUS_PENDING
    # Another worker takes it at once, not after a lease expiry.
    start_worker()
    again = await wait_for(
        runs, forever.uuid, done=lambda r: r.status == run_pb2.RUN_STATUS_RUNNING, timeout=10
    )
    assert len(again.attempts) == 2
    await runs.CancelRun(rpb.CancelRunRequest(run=forever.uuid))
    await wait_for(runs, forever.uuid)


async def test_progress_reaches_watchers_while_the_job_runs(definitions, runs, start_worker):
    script = "echo '::progress 30'; sleep 1.5; echo '::progress 70'; sleep 1.5"
    await define(definitions, "progressing", shell_job(script))
    start_worker()
    run = await submit(runs, "progressing")
    seen = []
    async for response in runs.WatchRun(rpb.WatchRunRequest(run=run.uuid)):
        seen.append((response.run.status, response.run.progress))
    running = [progress for status, progress in seen if status == run_pb2.RUN_STATUS_RUNNING]
    assert 30 in running and 70 in running, seen
    assert seen[-1][0] == run_pb2.RUN_STATUS_SUCCEEDED
