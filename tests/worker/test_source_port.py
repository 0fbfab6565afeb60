"""The source port: the catalog's adapter for each kind, and a stop during any fetch."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.outcome import StopReason
from batchyard.worker.sources import git
from batchyard.worker.sources.catalog import SourceSettings, open_source
from batchyard.worker.sources.port import NoSource, Source, SourceError
from tests.worker.jobs import MemorySink, shell_job


def opened(config: job_pb2.JobConfig, workspace: Path, tmp_path: Path) -> Source:
    return open_source(
        config, SourceSettings(), workspace_root=workspace, state_dir=tmp_path, time_left=60.0
    )


def inline(text: str, location: str = "main.sh") -> job_pb2.JobConfig:
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source_location=location,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text=text)),
    )


async def test_each_kind_is_an_adapter_of_the_port(workspace: Path, tmp_path: Path) -> None:
    (workspace / "etl").mkdir()
    in_place = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_PYTHON,
        source=job_pb2.Source(workspace=job_pb2.WorkspaceSource(path="etl")),
    )
    cases = [
        (in_place, False, workspace / "etl", "source ready: workspace path 'etl'"),
        (inline("echo hi\n"), True, tmp_path / "source", "inline text written to 'main.sh'"),
        (shell_job("true"), False, None, ""),
    ]
    for config, writes, root, described in cases:
        source = opened(config, workspace, tmp_path)
        assert source.writes_files is writes
        assert await source.fetch(tmp_path / "source", lambda _: None) == root
        assert described in source.describe()
    assert (tmp_path / "source" / "main.sh").read_text() == "echo hi\n"
    assert isinstance(opened(shell_job("true"), workspace, tmp_path), NoSource)
    git_job = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_PYTHON,
        source=job_pb2.Source(git=job_pb2.GitSource(repo_url="https://example.com/r.git")),
    )
    s3_job = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_PYTHON, source=job_pb2.Source(s3=job_pb2.S3Source(uri="s3://b/k"))
    )
    for config in (git_job, s3_job):  # fetched elsewhere (test_git_source, test_s3_source)
        source = opened(config, workspace, tmp_path)
        assert source.writes_files and source.describe() == ""


def test_refusals_come_before_any_fetch(workspace: Path, tmp_path: Path) -> None:
    no_source = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_PYTHON)
    with pytest.raises(SourceError, match="a python job needs a source"):
        opened(no_source, workspace, tmp_path)


async def test_a_git_fetch_cancelled_finishes_its_thread_first() -> None:
    release, finished = threading.Event(), threading.Event()

    def clone() -> str:
        release.wait(10)
        finished.set()
        return "done"

    fetch = asyncio.ensure_future(git._to_completion(clone))
    await asyncio.sleep(0.05)
    fetch.cancel()
    await asyncio.sleep(0.05)
    assert not fetch.done(), "the cancel waits for the thread"
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await fetch
    assert finished.is_set()


class SlowSource:
    """A source whose fetch waits until cancelled."""

    writes_files = True

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def fetch(self, destination: Path, note: object) -> Path:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return destination

    def describe(self) -> str:
        return "source ready: slow"


async def test_a_stop_during_any_fetch_cancels_it_and_the_job_never_starts(
    options: ExecutionOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowSource()
    monkeypatch.setattr("batchyard.worker.execution.attempt.open_source", lambda *_, **__: slow)
    sink = MemorySink()
    spec = AttemptSpec("run-slow", 1, inline("echo never\n"))
    async with Execution(spec, options, sink=sink) as execution:
        running = asyncio.create_task(execution.run())
        await asyncio.wait_for(slow.started.wait(), 5)
        execution.stop(StopReason.CANCEL)
        outcome = await asyncio.wait_for(running, 5)
    assert slow.cancelled
    assert outcome.status == run_pb2.RUN_STATUS_CANCELLED
    assert "not starting the job: cancel requested by a user" in sink.system()
    assert not any(line.startswith(("starting", "source ready")) for line in sink.system())
