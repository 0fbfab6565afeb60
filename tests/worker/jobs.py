"""Helpers for the worker tests: job configs, running an execution, watching processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from google.protobuf import duration_pb2

from batchyard.v1 import job_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.outcome import Outcome
from batchyard.worker.output.collector import LogRecord, Stream
from batchyard.worker.reaper.client import Reaper


class MemorySink:
    """Keeps an attempt's records in memory."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self.closed = False

    def emit(self, record: LogRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed = True

    def lines(self, stream: Stream = Stream.STDOUT) -> list[str]:
        return [r.message for r in self.records if r.stream is stream]

    def system(self) -> list[str]:
        return self.lines(Stream.SYSTEM)

    def lines_of(self, stream: str) -> list[str]:
        return self.lines(Stream(stream))


def _duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    value = duration_pb2.Duration()
    value.FromTimedelta(timedelta(seconds=seconds))
    return value


def shell_job(
    command: str,
    *args: str,
    env: dict[str, str] | None = None,
    secret_env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> job_pb2.JobConfig:
    """A SHELL job without a source: ``command`` on PATH, with ``args``."""
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source_location=command,
        args=list(args),
        env=env or {},
        secret_env=secret_env or {},
        timeout=_duration(timeout),
    )


def sh(script: str, *, timeout: float | None = None) -> job_pb2.JobConfig:
    """``sh -c <script>``."""
    return shell_job("sh", "-c", script, timeout=timeout)


def python_job(
    text: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    location: str = "",
) -> job_pb2.JobConfig:
    """A PYTHON job with inline source."""
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_PYTHON,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text=text)),
        source_location=location,
        args=list(args),
        env=env or {},
        timeout=_duration(timeout),
    )


def workspace_job(
    path: str, location: str, *, job_type: job_pb2.JobType.ValueType = job_pb2.JOB_TYPE_PYTHON
) -> job_pb2.JobConfig:
    return job_pb2.JobConfig(
        type=job_type,
        source=job_pb2.Source(workspace=job_pb2.WorkspaceSource(path=path)),
        source_location=location,
    )


@dataclass
class Result:
    """An attempt's outcome and log, and what its directory held when it ended."""

    outcome: Outcome
    sink: MemorySink
    attempt_dir: Path
    output_files: dict[str, bytes] = field(default_factory=dict)


async def run_job(
    config: job_pb2.JobConfig,
    options: ExecutionOptions,
    *,
    payload: bytes = b"",
    reaper: Reaper | None = None,
    run: str = "run-1",
    attempt: int = 1,
    during: Callable[[Execution, MemorySink], Awaitable[None]] | None = None,
) -> Result:
    """Runs one attempt to its end; ``during`` (a coroutine function) runs alongside."""
    sink = MemorySink()
    spec = AttemptSpec(run, attempt, config, payload)
    async with Execution(spec, options, reaper=reaper, sink=sink) as execution:
        task = asyncio.create_task(execution.run())
        if during is not None:
            await during(execution, sink)
        outcome = await task
        output = execution.paths.output
        found = output.iterdir() if output.is_dir() else ()  # an attempt may end before it
        files = {p.name: p.read_bytes() for p in found if p.is_file()}
        result = Result(outcome, sink, execution.paths.root, files)
    assert emptied(result.attempt_dir), "something of the attempt outlived it"
    assert sink.closed
    return result


def emptied(attempt_dir: Path) -> bool:
    """Whether nothing of an attempt is left: its directory is gone, or holds only the
    empty ``output/`` the next attempt of its slot starts with."""
    if not attempt_dir.exists():
        return True
    children = list(attempt_dir.iterdir())
    return [c.name for c in children] == ["output"] and not any(children[0].iterdir())


async def wait_for(condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Polls ``condition`` until it holds; fails the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def wait_for_sync(condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


def living(pids: Iterable[int]) -> list[int]:
    return [pid for pid in pids if alive(pid)]


def kill_leftovers(pids: Iterable[int]) -> None:
    """Cleans up after a failed test, so one failure does not leak sleepers."""
    for pid in living(pids):
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


def pids_in(lines: Iterable[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("pid ")]
