"""Job users (``--job-users``): each slot's job runs as a uid of its own, so concurrent jobs
cannot read each other's environment, signal each other, or open each other's files — and
everything else (sources, payload, results, limits, timeout, cancel, the reaper) still works.

Real subprocesses switched to real uids: the tests that start jobs need root.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3  # type: ignore[import-untyped]
import pytest

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution import job_users
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.execution.directories import SlotDirectories
from batchyard.worker.execution.job_users import JobUsers, JobUsersError, check_access
from batchyard.worker.execution.limits import WorkerLimits, find_prlimit
from batchyard.worker.outcome import Outcome, StopReason
from batchyard.worker.reaper.client import Reaper
from batchyard.worker.results.artifacts import LocalArtifactStore
from batchyard.worker.settings import SettingsError, add_arguments, settings_from_args
from batchyard.worker.sources.catalog import SourceSettings
from tests.job_users import (
    FIRST_UID,
    free_range,
    job_python,
    reachable_dir,
    reachable_postgres,
    requires_root,
)
from tests.s3 import moto_server, use_test_credentials
from tests.worker.jobs import (
    MemorySink,
    alive,
    kill_leftovers,
    living,
    pids_in,
    python_job,
    sh,
    wait_for,
)

CANARY = "canary-secret-7f3a9c"
CANARY_FILE = "canary-file-0b51d2"
FORKING_JOB = "sleep 1000 & echo pid $!; sleep 1000 & echo pid $!; echo started; {end}"


def parse(argv: list[str], env: dict[str, str] | None = None, *, euid: int = 0) -> JobUsers | None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(argv)
    return settings_from_args(args, env or {"PATH": "/usr/bin:/bin"}, euid=euid).job_users


# ------------------------------------------------------------------ the flag (no root needed)


def test_the_flag_gives_one_uid_per_slot_by_default() -> None:
    assert parse([]) is None
    assert parse(["--slots", "3", "--job-users", "200000"]) == JobUsers(200000, 3)
    assert parse(["--slots", "3"], {"BATCHYARD_JOB_USERS": "200000:8"}) == JobUsers(200000, 8)


def test_job_users_are_refused_when_the_worker_is_not_root() -> None:
    with pytest.raises(SettingsError, match=r"^--job-users: needs the worker to run as root"):
        parse(["--job-users", "200000"], euid=1000)
    with pytest.raises(SettingsError, match=r"^BATCHYARD_JOB_USERS: .*root.*uid 1000"):
        parse([], {"BATCHYARD_JOB_USERS": "200000"}, euid=1000)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "FIRST_UID must be 1 or more"),
        ("200000:2", "COUNT 2 is fewer than the 4 slots"),
        ("users", "is not FIRST_UID"),
        ("65530:8", "holds 65534"),
        (f"{2**31 - 3}:4", "is over"),
    ],
)
def test_an_unusable_range_is_refused(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^--job-users: .*{message}"):
        parse(["--slots", "4", "--job-users", value])


# ------------------------------------------------------------------ fixtures (root)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A directory the job uids can pass through (pytest's own tmp is 0700)."""
    path = reachable_dir("by-job-users-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def interpreter(scratch: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("--job-users needs root")
    python = job_python(scratch, FIRST_UID)
    if python is None:
        pytest.skip("no Python interpreter the job uids can run (and that imports the worker)")
    return python


@pytest.fixture(params=["setpriv", "popen-user"])
def users(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> JobUsers:
    """Four job uids; jobs switch to them through setpriv, then through Popen's ``user=``
    (what the worker does where setpriv is missing)."""
    free_range(FIRST_UID, 4)
    if request.param == "setpriv" and job_users.find_setpriv() is None:
        pytest.skip("util-linux setpriv missing")
    if request.param == "popen-user":
        monkeypatch.setattr(job_users, "find_setpriv", lambda: None)
    return JobUsers(FIRST_UID, 4)


@pytest.fixture
def pooled(
    options: ExecutionOptions, scratch: Path, users: JobUsers, request: pytest.FixtureRequest
) -> Iterator[ExecutionOptions]:
    """Options whose slots run their jobs as ``users``, in a state directory they reach."""
    state = scratch / f"state-{request.node.name[:40]}"
    state.mkdir(mode=0o711)
    yield dataclasses.replace(options, state_dir=state, directories=SlotDirectories(state, users))
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def spawned() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    kill_leftovers(pids)


async def attempt(
    options: ExecutionOptions,
    config: job_pb2.JobConfig,
    *,
    run: str = "r",
    payload: bytes = b"",
    reaper: Reaper | None = None,
) -> tuple[Outcome, MemorySink]:
    sink = MemorySink()
    spec = AttemptSpec(run, 1, config, payload)
    async with Execution(spec, options, reaper=reaper, sink=sink) as execution:
        outcome = await execution.run()
    return outcome, sink


@pytest.fixture
async def running_victim(
    pooled: ExecutionOptions, spawned: list[int]
) -> AsyncIterator[tuple[Execution, MemorySink]]:
    """A job holding a canary secret in its environment and a canary file in its directory,
    running until cancelled."""
    script = (
        f'echo {CANARY_FILE} > "$HOME/canary.txt"; '
        "own=$(tr '\\0' '\\n' < /proc/$$/environ | grep -c '^CANARY='); "
        'echo "ready $$ $HOME $(id -u) $own"; sleep 1000'
    )
    config = sh(script)
    config.secret_env["CANARY"] = CANARY
    sink = MemorySink()
    spec = AttemptSpec("victim", 1, config)
    async with Execution(spec, pooled, sink=sink) as execution:
        task = asyncio.create_task(execution.run())
        await wait_for(lambda: bool(sink.lines_of("stdout")), "the victim to start")
        yield execution, sink
        execution.stop(StopReason.CANCEL)
        outcome = await task
        assert outcome.status == run_pb2.RUN_STATUS_CANCELLED


# ------------------------------------------------------------------ isolation


SNOOP = """
id -u; id -g; id -G
tr '\\0' '\\n' < /proc/$TARGET_PID/environ; echo "environ exit $?"
ls -A "$TARGET_HOME"; echo "ls exit $?"
cat "$TARGET_HOME/canary.txt"; echo "cat exit $?"
kill -0 "$TARGET_PID"; echo "kill exit $?"
"""


@requires_root
async def test_a_concurrent_job_cannot_read_another_jobs_environment_or_files(
    running_victim: tuple[Execution, MemorySink], pooled: ExecutionOptions, users: JobUsers
) -> None:
    victim, victim_sink = running_victim
    _, pid, home, uid, sees_own = victim_sink.lines_of("stdout")[0].split()
    # The canaries are there: the victim reads its own environment, root reads both.
    assert sees_own == "1" and uid == str(users.first)
    assert f"CANARY={CANARY}".encode() in Path(f"/proc/{pid}/environ").read_bytes()
    assert Path(home, "canary.txt").read_text().strip() == CANARY_FILE
    assert Path(home) == victim.paths.root

    snoop = sh(SNOOP)
    snoop.env.update(TARGET_PID=pid, TARGET_HOME=home)
    outcome, sink = await attempt(pooled, snoop, run="snoop")

    out, err = sink.lines_of("stdout"), sink.lines_of("stderr")
    theirs = str(users.first + 1)
    assert out[:3] == [theirs, theirs, theirs], "another uid and gid, and no other group"
    for what in ("environ", "ls", "cat", "kill"):
        assert f"{what} exit 0" not in out, f"{what} succeeded: {out} {err}"
    assert sum("Permission denied" in line for line in err) == 3, err  # environ, ls, cat
    assert any("Operation not permitted" in line for line in err), err  # kill
    everything = "\n".join(out + err)
    assert CANARY not in everything and CANARY_FILE not in everything
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED  # the last command's exit: 0


@requires_root
async def test_slot_directories_belong_to_their_uid(
    pooled: ExecutionOptions, users: JobUsers
) -> None:
    directories = pooled.directories
    assert directories is not None
    first = await directories.acquire(b"payload")
    second = await directories.acquire(b"")
    try:
        assert (first.uid, second.uid) == (users.first, users.first + 1)
        for paths in (first, second):
            for path in (paths.root, paths.output):
                info = path.stat()
                assert (info.st_uid, info.st_gid) == (paths.uid, paths.uid)
                assert stat.S_IMODE(info.st_mode) == 0o700
        payload = first.payload.stat()
        assert (payload.st_uid, stat.S_IMODE(payload.st_mode)) == (users.first, 0o600)
        assert stat.S_IMODE(first.root.parent.stat().st_mode) == 0o711  # slots/: pass only
    finally:
        await directories.release(first)
        await directories.release(second)
    again = await directories.acquire(b"")
    assert again.uid in (users.first, users.first + 1)
    await directories.release(again)


# ------------------------------------------------------------------ everything still works


@requires_root
async def test_a_job_without_a_payload_reads_the_shared_empty_one(
    pooled: ExecutionOptions,
) -> None:
    outcome, sink = await attempt(pooled, sh('wc -c < "$BATCHYARD_PAYLOAD_PATH"'))
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, sink.lines_of("stderr")
    assert sink.lines_of("stdout") == ["0"]


PYTHON_JOB = """
import json, os, pathlib, stat, sys
def owner(path):
    info = os.stat(path)
    return [info.st_uid, info.st_gid, oct(stat.S_IMODE(info.st_mode))]
env = os.environ
me = pathlib.Path(sys.argv[0])
me.with_name("notes.txt").write_text("the job owns its source directory")
payload = pathlib.Path(env["BATCHYARD_PAYLOAD_PATH"]).read_text()
pathlib.Path(env["BATCHYARD_OUTPUT_DIR"], "result.txt").write_text(payload.upper())
print(json.dumps({
    "ids": [os.getuid(), os.getgid(), os.getgroups()],
    "home": owner(env["HOME"]),
    "output": owner(env["BATCHYARD_OUTPUT_DIR"]),
    "payload": owner(env["BATCHYARD_PAYLOAD_PATH"]),
    "source": owner(me),
}))
"""


@requires_root
async def test_a_python_job_reads_its_sources_and_payload_and_its_results_are_stored(
    pooled: ExecutionOptions, interpreter: str, users: JobUsers, scratch: Path
) -> None:
    store = scratch / "artifacts"
    options = dataclasses.replace(pooled, python=interpreter, artifacts=LocalArtifactStore(store))
    config = python_job(PYTHON_JOB, location="pkg/main.py")
    outcome, sink = await attempt(options, config, run="py", payload=b"hello")
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, (outcome, sink.lines_of("stderr"))
    seen = json.loads(sink.lines_of("stdout")[0])
    uid = users.first
    assert seen["ids"] == [uid, uid, []]
    assert seen["home"] == seen["output"] == [uid, uid, "0o700"]
    assert seen["payload"] == [uid, uid, "0o600"]
    assert seen["source"][:2] == [uid, uid]
    assert [r.name for r in outcome.results] == ["result.txt"]
    assert next(store.rglob("result.txt")).read_text() == "HELLO"


GIT_JOB = """#!/bin/sh
cd "$(dirname "$0")"
id -u
cat file.txt
echo more >> file.txt && echo "file.txt is writable"
stat -c '%u %F' link
"""


@requires_root
async def test_a_git_checkout_is_handed_to_the_slot_uid_without_following_its_links(
    pooled: ExecutionOptions, users: JobUsers, tmp_path: Path
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git missing")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "run.sh").write_text(GIT_JOB)
    (repo / "run.sh").chmod(0o755)
    (repo / "file.txt").write_text("from git\n")
    victim = tmp_path / "root-only.txt"
    victim.write_text("root's")
    (repo / "link").symlink_to(victim)
    env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.defpath}
    who = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    for args in (["init", "-q"], ["add", "-A"], [*who, "commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source=job_pb2.Source(git=job_pb2.GitSource(repo_url=repo.as_uri())),
        source_location="run.sh",
    )
    sources = SourceSettings(git_protocols=("file",), git_timeout=30.0)
    options = dataclasses.replace(pooled, sources=sources)
    outcome, sink = await attempt(options, config)
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, (outcome, sink.lines_of("stderr"))
    uid = str(users.first)
    assert sink.lines_of("stdout") == [
        uid,
        "from git",
        "file.txt is writable",
        f"{uid} symbolic link",
    ]
    assert victim.stat().st_uid == 0, "the link's target keeps its owner"


@requires_root
async def test_an_s3_download_is_handed_to_the_slot_uid(
    pooled: ExecutionOptions,
    users: JobUsers,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    use_test_credentials(monkeypatch, tmp_path)
    with moto_server() as endpoint:
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        s3.create_bucket(Bucket="jobs")
        s3.put_object(Bucket="jobs", Key="sh/run.sh", Body=b'id -u; cat "${0%/*}/a/b/c.txt"\n')
        s3.put_object(Bucket="jobs", Key="sh/a/b/c.txt", Body=b"from a nested key\n")
        source = job_pb2.S3Source(uri="s3://jobs/sh/", region="us-east-1", endpoint_url=endpoint)
        config = job_pb2.JobConfig(
            type=job_pb2.JOB_TYPE_SHELL, source=job_pb2.Source(s3=source), source_location="run.sh"
        )
        outcome, sink = await attempt(pooled, config)
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, (outcome, sink.lines_of("stderr"))
    assert sink.lines_of("stdout") == [str(users.first), "from a nested key"]


@requires_root
async def test_a_sql_jobs_runner_runs_as_the_slot_uid(
    pooled: ExecutionOptions,
    interpreter: str,
    scratch: Path,
    sql_target_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker's own interpreter runs the SQL runner: here, one the job uids can run.
    monkeypatch.setattr(sys, "executable", interpreter)
    store = scratch / "sql-artifacts"
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SQL,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text="SELECT 6 * 7 AS answer")),
        sql_target=job_pb2.SqlTarget(connection="target"),
    )
    async with reachable_postgres(sql_target_dsn, scratch / "pg") as dsn:
        options = dataclasses.replace(
            pooled, sql_targets={"target": dsn}, artifacts=LocalArtifactStore(store)
        )
        outcome, sink = await attempt(options, config, run="sql")
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, (outcome, sink.lines_of("stderr"))
    assert [r.name for r in outcome.results] == ["result.csv"]
    assert next(store.rglob("result.csv")).read_text().split() == ["answer", "42"]


@requires_root
async def test_a_timeout_kills_the_job_uids_process_group(
    pooled: ExecutionOptions, users: JobUsers, spawned: list[int]
) -> None:
    outcome, sink = await attempt(pooled, sh(FORKING_JOB.format(end="wait"), timeout=0.5))
    spawned += pids_in(sink.lines_of("stdout"))
    assert outcome.status == run_pb2.RUN_STATUS_FAILED
    assert outcome.reason == run_pb2.RUN_REASON_TIMEOUT
    assert len(spawned) == 2
    await wait_for(lambda: not living(spawned), "the grandchildren to die")


@requires_root
async def test_a_cancel_kills_a_job_that_ignores_sigterm(
    pooled: ExecutionOptions, users: JobUsers, spawned: list[int]
) -> None:
    sink = MemorySink()
    config = sh("trap '' TERM; " + FORKING_JOB.format(end="while :; do wait; done"))
    async with Execution(AttemptSpec("c", 1, config), pooled, sink=sink) as execution:
        task = asyncio.create_task(execution.run())
        await wait_for(lambda: "started" in sink.lines_of("stdout"), "the job to start")
        spawned += pids_in(sink.lines_of("stdout"))
        assert all(_uid_of(pid) == users.first for pid in spawned)
        execution.stop(StopReason.CANCEL)
        outcome = await task
    assert outcome.status == run_pb2.RUN_STATUS_CANCELLED
    assert "sent SIGKILL to the job's process group" in sink.system()
    await wait_for(lambda: not living(spawned), "the grandchildren to die")


@requires_root
async def test_a_process_that_left_the_session_dies_with_the_attempt(
    pooled: ExecutionOptions, spawned: list[int]
) -> None:
    if shutil.which("setsid") is None:
        pytest.skip("util-linux setsid missing")
    outcome, sink = await attempt(pooled, sh("setsid sleep 1000 & echo pid $!"))
    spawned += pids_in(sink.lines_of("stdout"))
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED and len(spawned) == 1
    # Gone once the attempt is over: its uid's processes are killed (SIGKILL sent) before the
    # slot's reuse; on a loaded machine the kernel may take a moment to finish it off.
    await wait_for(lambda: not alive(spawned[0]), "the process that left the session to die")


@requires_root
@pytest.mark.parametrize("launcher", ["prlimit", "trampoline"])
async def test_limits_hold_for_the_job_uid(
    pooled: ExecutionOptions, interpreter: str, users: JobUsers, launcher: str
) -> None:
    if launcher == "prlimit" and find_prlimit() is None:
        pytest.skip("util-linux prlimit missing")
    prlimit = find_prlimit() if launcher == "prlimit" else None
    options = dataclasses.replace(pooled, limits=WorkerLimits(prlimit=prlimit, python=interpreter))
    config = sh("id -u; ulimit -n; awk '/^Max processes/ {print $3}' /proc/self/limits")
    config.resources.CopyFrom(job_pb2.ResourceRequirements(open_files=64, processes=50))
    outcome, sink = await attempt(options, config)
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, sink.lines_of("stderr")
    assert sink.lines_of("stdout") == [str(users.first), "64", "50"]
    assert not [m for m in sink.system() if "does not hold" in m], "RLIMIT_NPROC holds"


@requires_root
async def test_the_reaper_kills_a_job_uids_group_when_the_worker_dies(
    pooled: ExecutionOptions, spawned: list[int]
) -> None:
    reaper = Reaper.start()
    sink = MemorySink()
    config = sh(FORKING_JOB.format(end="wait"))
    try:
        async with Execution(AttemptSpec("k", 1, config), pooled, reaper=reaper, sink=sink) as e:
            task = asyncio.create_task(e.run())
            await wait_for(lambda: "started" in sink.lines_of("stdout"), "the job to start")
            spawned += pids_in(sink.lines_of("stdout"))
            reaper.close()  # what the worker's death does: EOF on the reaper's pipe
            outcome = await asyncio.wait_for(task, 10)
    finally:
        reaper.close()
    assert outcome.message.startswith("killed by signal SIGKILL"), outcome
    await wait_for(lambda: not living(spawned), "the grandchildren to die")


@requires_root
def test_the_sweep_kills_nothing_unless_it_runs_as_the_job_uid(users: JobUsers) -> None:
    with pytest.raises(ValueError, match="no job runs as uid 0"):
        job_users.kill_processes_of(0)
    # Its shell run as root, as if the switch had failed — in a PID namespace of its own,
    # where `kill -1` could reach nothing but the namespace, should the guard ever break.
    if shutil.which("unshare") is None:
        pytest.skip("util-linux unshare missing")
    sandbox = ["unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c"]
    done = subprocess.run(
        [*sandbox, job_users._KILL_ALL, "sh", str(users.first)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if "unshare failed" in done.stderr:
        pytest.skip(f"no PID namespace here: {done.stderr.strip()}")
    assert done.returncode == 3, done
    assert f"not switched to uid {users.first} (uids: 0 0 0)" in done.stderr


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


# ------------------------------------------------------------------ the start-up check


@requires_root
def test_the_start_up_check_passes_with_a_reachable_interpreter_and_state(
    interpreter: str, users: JobUsers, scratch: Path
) -> None:
    state = scratch / "checked-state"
    check_access(users, state_dir=state, interpreters=(interpreter, interpreter))
    assert stat.S_IMODE(state.stat().st_mode) & 0o011 == 0o011


@requires_root
def test_the_start_up_check_refuses_an_interpreter_the_job_uids_cannot_run(
    interpreter: str, users: JobUsers, scratch: Path
) -> None:
    closed = scratch / "closed"
    closed.mkdir(mode=0o700, exist_ok=True)
    hidden = closed / "python"
    hidden.unlink(missing_ok=True)
    hidden.symlink_to(interpreter)
    with pytest.raises(JobUsersError, match=r"cannot run the worker's interpreter .*/closed/"):
        check_access(users, state_dir=scratch / "s1", interpreters=(str(hidden), interpreter))
    with pytest.raises(JobUsersError, match=r"interpreter of PYTHON jobs .*/closed/python"):
        check_access(users, state_dir=scratch / "s2", interpreters=(interpreter, str(hidden)))


@requires_root
def test_the_start_up_check_refuses_a_state_directory_the_job_uids_cannot_reach(
    interpreter: str, users: JobUsers, scratch: Path
) -> None:
    closed = scratch / "closed-state"
    closed.mkdir(mode=0o700, exist_ok=True)
    with pytest.raises(JobUsersError, match="cannot reach the state directory"):
        check_access(users, state_dir=closed / "state", interpreters=(interpreter,))
