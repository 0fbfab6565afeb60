"""Job isolation: resource limits per attempt (real subprocesses, through ``prlimit`` and
through the Python trampoline), the worker's caps, the job's environment and directory."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import stat
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf import duration_pb2

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.attempt import ExecutionOptions
from batchyard.worker.execution.command import Command
from batchyard.worker.execution.directories import SlotDirectories
from batchyard.worker.execution.limits import (
    CPU_KILL_GRACE,
    ResourceLimits,
    WorkerLimits,
    attempt_limits,
    find_prlimit,
    format_bytes,
    limited_command,
)
from batchyard.worker.settings import add_arguments, settings_from_args
from tests.worker.jobs import run_job, shell_job

MiB = 1024 * 1024
LAUNCHERS = [
    pytest.param(
        "prlimit",
        marks=pytest.mark.skipif(find_prlimit() is None, reason="util-linux prlimit missing"),
    ),
    "trampoline",
]


def _python(code: str, resources: job_pb2.ResourceRequirements | None = None) -> job_pb2.JobConfig:
    config = shell_job(sys.executable, "-I", "-c", code, timeout=30)
    if resources is not None:
        config.resources.CopyFrom(resources)
    return config


def _seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(timedelta(seconds=value))
    return duration


def _options(
    options: ExecutionOptions, launcher: str, *, open_files: int | None = None
) -> ExecutionOptions:
    """The options with a worker cap, limits set by ``prlimit`` or by the trampoline."""
    prlimit = find_prlimit() if launcher == "prlimit" else None
    return replace(options, limits=WorkerLimits(open_files=open_files, prlimit=prlimit))


def _any_launcher() -> str:
    return "prlimit" if find_prlimit() else "trampoline"


# ------------------------------------------------------------------ choosing the limits


def test_a_job_gets_what_it_asks_within_the_workers_caps() -> None:
    caps = WorkerLimits(memory_bytes=512 * MiB, cpu_seconds=60, open_files=256)
    asked = job_pb2.ResourceRequirements(
        memory_bytes=128 * MiB, cpu_time=_seconds(1.2), open_files=1000
    )
    limits, notes = attempt_limits(asked, caps)
    assert limits == ResourceLimits(memory_bytes=128 * MiB, cpu_seconds=2, open_files=256)
    assert notes == [
        "resources.open_files of 1000 is over this worker's limit: limited to 256",
    ]


def test_the_workers_caps_are_the_default_and_nothing_means_no_wrapper() -> None:
    limits, notes = attempt_limits(job_pb2.ResourceRequirements(), WorkerLimits(open_files=64))
    assert limits == ResourceLimits(open_files=64) and not notes
    none, _ = attempt_limits(job_pb2.ResourceRequirements(cpus=2), WorkerLimits())
    assert not none
    command = Command(argv=("/bin/true",), cwd=Path("/"), env={})
    assert limited_command(command, none, WorkerLimits()) is command


def test_a_limit_at_or_over_the_workers_own_hard_limit_is_left_to_inheritance() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    limits, _ = attempt_limits(job_pb2.ResourceRequirements(open_files=hard + 1), WorkerLimits())
    assert limits.open_files is None


def test_the_wrappers_argv() -> None:
    command = Command(argv=("/bin/prog", "--flag"), cwd=Path("/"), env={})
    limits = ResourceLimits(memory_bytes=MiB, cpu_seconds=3, open_files=10, processes=5)
    wrapped = limited_command(command, limits, WorkerLimits(prlimit="/usr/bin/prlimit"))
    assert wrapped.argv == (
        "/usr/bin/prlimit",
        f"--as={MiB}:{MiB}",
        f"--cpu=3:{3 + CPU_KILL_GRACE}",
        "--nofile=10:10",
        "--nproc=5:5",
        "--",
        "/bin/prog",
        "--flag",
    )
    trampoline = limited_command(command, limits, WorkerLimits(prlimit=None, python="/py"))
    assert trampoline.argv[:4] == ("/py", "-I", "-S", "-c")
    assert trampoline.argv[-2:] == ("/bin/prog", "--flag")
    assert trampoline.env is command.env and trampoline.cwd == command.cwd


def test_flags_set_the_workers_limits(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--max-memory", "2GiB", "--max-cpu-time", "90.5", "--max-open-files", "512"]
    )
    settings = settings_from_args(args, {"BATCHYARD_MAX_PROCESSES": "64", "HOME": str(tmp_path)})
    limits = settings.execution.limits
    assert (limits.memory_bytes, limits.cpu_seconds, limits.open_files, limits.processes) == (
        2 * 1024**3,
        91,
        512,
        64,
    )
    assert format_bytes(2 * 1024**3) == "2 GiB"


# ------------------------------------------------------------------ real jobs

ALLOCATE = """
import sys
try:
    block = bytearray(300 * 1024 * 1024)
except MemoryError:
    print("MemoryError", file=sys.stderr)
    sys.exit(1)
print("allocated")
"""


@pytest.mark.parametrize("launcher", LAUNCHERS)
async def test_a_job_allocating_more_than_its_memory_fails(
    options: ExecutionOptions, launcher: str
) -> None:
    result = await run_job(
        _python(ALLOCATE, job_pb2.ResourceRequirements(memory_bytes=200 * MiB)),
        _options(options, launcher),
    )
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.exit_code == 1
    assert result.sink.lines_of("stderr") == ["MemoryError"]
    assert "resource limits: memory 200 MiB (address space)" in result.sink.system()


SPIN = """
import signal, sys
if sys.argv[1:] == ["ignore"]:
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
while True:
    pass
"""


@pytest.mark.parametrize("launcher", LAUNCHERS)
async def test_a_cpu_spinner_is_killed_at_its_cpu_time(
    options: ExecutionOptions, launcher: str
) -> None:
    config = _python(SPIN, job_pb2.ResourceRequirements(cpu_time=_seconds(1)))
    result = await run_job(config, _options(options, launcher))
    outcome = result.outcome
    assert outcome.status == run_pb2.RUN_STATUS_FAILED
    assert outcome.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert outcome.exit_code == 128 + 24  # SIGXCPU
    assert outcome.message == (
        "killed by signal SIGXCPU (exit code 152): CPU time limit of 1s reached"
    )
    assert "CPU time limit of 1s reached" in result.sink.system()


async def test_a_spinner_ignoring_sigxcpu_is_killed_at_the_hard_limit(
    options: ExecutionOptions,
) -> None:
    config = _python(SPIN, job_pb2.ResourceRequirements(cpu_time=_seconds(1)))
    config.args.append("ignore")
    result = await run_job(config, _options(options, _any_launcher()))
    assert result.outcome.exit_code == 128 + 9
    assert result.outcome.message.endswith(": CPU time limit of 1s reached")


OPEN_FILES = """
import resource
opened = []
try:
    while len(opened) < 10_000:
        opened.append(open("/dev/null"))
except OSError as exc:
    print(len(opened), exc.strerror, resource.getrlimit(resource.RLIMIT_NOFILE))
"""


@pytest.mark.parametrize("launcher", LAUNCHERS)
async def test_open_files_are_limited_and_a_larger_ask_is_capped(
    options: ExecutionOptions, launcher: str
) -> None:
    result = await run_job(
        _python(OPEN_FILES, job_pb2.ResourceRequirements(open_files=5000)),
        _options(options, launcher, open_files=32),
    )
    (line,) = result.sink.lines_of("stdout")
    count, rest = line.split(" ", 1)
    assert int(count) < 32  # stdin, stdout, stderr and the interpreter's own files count
    assert rest == "Too many open files (32, 32)"
    system = result.sink.system()
    assert "resources.open_files of 5000 is over this worker's limit: limited to 32" in system
    assert "resource limits: open files 32" in system


FORK = """
import os, sys, time
made = failed = 0
for _ in range(40):  # bounded even if the limit did not hold
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(30)  # the attempt's end kills the whole group
        os._exit(0)
    made += 1
print(made, failed)
"""


@pytest.mark.parametrize("launcher", LAUNCHERS)
async def test_a_fork_bomb_is_bounded_by_processes(
    options: ExecutionOptions, launcher: str
) -> None:
    argv = [sys.executable, "-I", "-c", FORK]
    if os.geteuid() == 0:  # RLIMIT_NPROC does not apply to root: run the job as nobody
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to drop to an unprivileged user")
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    config = shell_job(argv[0], *argv[1:], timeout=30)
    config.resources.processes = 8
    result = await run_job(config, _options(options, launcher))
    made, failed = map(int, result.sink.lines_of("stdout")[0].split())
    assert made < 8 and failed == 40 - made
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED


# ------------------------------------------------------------------ environment, directory

ENV_AND_DIR = """
import json, os, stat
print(json.dumps(sorted(os.environ)))
print(oct(stat.S_IMODE(os.stat(".").st_mode)), oct(stat.S_IMODE(os.stat("output").st_mode)))
"""

WORKER_SECRETS = {
    "BATCHYARD_TOKEN": "byt_worker-token",
    "BATCHYARD_SQL_TARGET_MAIN": "postgresql://u:p@db/x",
    "AWS_ACCESS_KEY_ID": "AKIAWORKER",
    "AWS_SECRET_ACCESS_KEY": "worker-aws-secret",
    "AWS_SESSION_TOKEN": "worker-session",
    "AWS_PROFILE": "worker",
    "GOOGLE_APPLICATION_CREDENTIALS": "/etc/worker.json",
}


@pytest.mark.parametrize("limited", [False, True])
async def test_the_job_gets_nothing_of_the_workers_environment_in_a_private_dir(
    options: ExecutionOptions, monkeypatch: pytest.MonkeyPatch, limited: bool
) -> None:
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    if limited:
        options = _options(options, _any_launcher(), open_files=64)
    result = await run_job(_python(ENV_AND_DIR), options)
    names_line, modes = result.sink.lines_of("stdout")
    names = set(json.loads(names_line))
    assert not names & set(WORKER_SECRETS)
    assert not any(name.startswith(("AWS_", "GOOGLE_")) for name in names)
    assert names <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_CTYPE",
        "BATCHYARD_RUN_ID",
        "BATCHYARD_ATTEMPT",
        "BATCHYARD_PAYLOAD_PATH",
        "BATCHYARD_OUTPUT_DIR",
    }
    assert modes == "0o700 0o700"
    assert stat.S_IMODE(result.attempt_dir.parent.stat().st_mode) == 0o700


async def test_pooled_attempt_directories_are_private(tmp_path: Path) -> None:
    pool = SlotDirectories(tmp_path / "state")
    paths = await pool.acquire(b"payload")
    for path in (paths.root, paths.output, paths.root.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE(paths.payload.stat().st_mode) == 0o600
    await pool.release(paths)
