"""Results within an execution: real jobs write files, the attempt stores them before it
ends; failures, stops during the upload, and the trivial run's empty output."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from batchyard.v1 import run_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.outcome import StopReason
from batchyard.worker.output.collector import Level, Stream
from batchyard.worker.results.artifacts import LocalArtifactStore, S3ArtifactStore
from batchyard.worker.results.store import ResultLimits
from tests.s3 import use_test_credentials
from tests.worker.jobs import MemorySink, python_job, run_job, sh

WRITER = """
import os, pathlib
out = pathlib.Path(os.environ["BATCHYARD_OUTPUT_DIR"])
(out / "tables").mkdir()
(out / "tables" / "daily.csv").write_text("day,total\\n1,10\\n")
(out / "summary.json").write_bytes(b'{"ok": true}')
os.symlink("/etc/hostname", out / "escape")
print("wrote results")
"""


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def results_options(options: ExecutionOptions, store_dir: Path) -> ExecutionOptions:
    return dataclasses.replace(options, artifacts=LocalArtifactStore(store_dir))


def ending(sink: MemorySink) -> list[str]:
    """The system entries from the job's exit on."""
    system = sink.system()
    return system[next(i for i, m in enumerate(system) if m.startswith("starting:")) + 1 :]


async def test_files_the_job_writes_become_the_outcomes_results(
    results_options: ExecutionOptions, store_dir: Path
) -> None:
    run = str(uuid.uuid4())
    result = await run_job(python_job(WRITER), results_options, run=run, attempt=2)
    outcome = result.outcome
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    csv = b"day,total\n1,10\n"
    assert [(r.name, r.size, r.sha256, r.media_type) for r in outcome.results] == [
        ("summary.json", 12, hashlib.sha256(b'{"ok": true}').hexdigest(), "application/json"),
        ("tables/daily.csv", len(csv), hashlib.sha256(csv).hexdigest(), "text/csv"),
    ]
    assert ending(result.sink) == [
        "result 'escape' skipped: a symlink (never followed)",
        f"stored 2 result file(s), {12 + len(csv)} bytes, 1 skipped",
        "attempt ended: exited with code 0",
    ]
    warning = next(r for r in result.sink.records if r.message.startswith("result 'escape'"))
    assert (warning.stream, warning.level) == (Stream.SYSTEM, Level.WARNING)
    assert (store_dir / "runs" / run / "2" / "tables" / "daily.csv").read_bytes() == csv


async def test_a_failed_or_timed_out_job_still_stores_its_results(
    results_options: ExecutionOptions,
) -> None:
    script = 'echo partial > "$BATCHYARD_OUTPUT_DIR/partial.txt"; echo oops >&2; exit 4'
    failed = await run_job(sh(script), results_options)
    assert failed.outcome.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert [r.name for r in failed.outcome.results] == ["partial.txt"]
    assert failed.outcome.message == "exited with code 4: oops"
    slow = await run_job(
        sh('echo x > "$BATCHYARD_OUTPUT_DIR/x.txt"; sleep 30', timeout=0.5), results_options
    )
    assert slow.outcome.reason == run_pb2.RUN_REASON_TIMEOUT
    assert [r.name for r in slow.outcome.results] == ["x.txt"]


async def test_a_trivial_run_touches_no_store(
    results_options: ExecutionOptions, store_dir: Path
) -> None:
    result = await run_job(sh("true"), results_options)
    assert result.outcome.results == ()
    assert not any("result" in message for message in result.sink.system())
    assert not store_dir.exists()  # the store was never used: no directory made


async def test_a_job_that_removes_its_output_directory(results_options: ExecutionOptions) -> None:
    spec = AttemptSpec("run-1", 1, sh('rmdir "$BATCHYARD_OUTPUT_DIR"'))
    async with Execution(spec, results_options) as execution:
        outcome = await execution.run()
    assert outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert outcome.results == ()


async def test_an_upload_failure_fails_a_successful_job(
    options: ExecutionOptions, tmp_path: Path
) -> None:
    (tmp_path / "not-a-directory").write_bytes(b"")
    broken = dataclasses.replace(
        options, artifacts=LocalArtifactStore(tmp_path / "not-a-directory")
    )
    result = await run_job(
        sh('echo r > "$BATCHYARD_OUTPUT_DIR/r.txt"; echo noise >&2'), broken, run="run-u"
    )
    outcome = result.outcome
    assert outcome.status == run_pb2.RUN_STATUS_FAILED
    assert outcome.reason == run_pb2.RUN_REASON_RESULT_UPLOAD_FAILED
    assert outcome.exit_code == 0
    assert outcome.results == ()
    assert outcome.message.startswith("exited with code 0, but results not stored: cannot write")
    assert "noise" not in outcome.message  # the job's stderr is not why it failed
    entry = next(r for r in result.sink.records if r.message.startswith("results not stored"))
    assert entry.level is Level.ERROR

    failing = await run_job(sh('echo r > "$BATCHYARD_OUTPUT_DIR/r.txt"; exit 2'), broken)
    assert failing.outcome.reason == run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE
    assert "results not stored" in failing.outcome.message


async def test_the_results_cap_applies(results_options: ExecutionOptions) -> None:
    capped = dataclasses.replace(results_options, result_limits=ResultLimits(max_bytes=5))
    script = 'cd "$BATCHYARD_OUTPUT_DIR"; printf 1234 > a; printf 12 > b'
    result = await run_job(sh(script), capped)
    assert [r.name for r in result.outcome.results] == ["a"]
    assert ending(result.sink)[:2] == [
        "result 'b' skipped: its 2 bytes would pass the limit of 5 bytes of results per "
        "attempt (1 left)",
        "stored 1 result file(s), 4 bytes, 1 skipped",
    ]


async def test_no_upload_when_the_lease_was_lost_or_at_shutdown(
    results_options: ExecutionOptions, store_dir: Path
) -> None:
    script = 'echo r > "$BATCHYARD_OUTPUT_DIR/r.txt"; echo ready; sleep 30'
    for reason in (StopReason.LEASE_LOST, StopReason.SHUTDOWN):

        async def stop_when_ready(
            execution: Execution, sink: MemorySink, reason: StopReason = reason
        ) -> None:
            while "ready" not in sink.lines_of("stdout"):
                await asyncio.sleep(0.01)
            execution.stop(reason)

        result = await run_job(sh(script), results_options, during=stop_when_ready)
        assert result.outcome.stopped is reason
        assert result.outcome.results == ()
        assert not store_dir.exists()


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
async def hanging_store(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[S3ArtifactStore]:
    use_test_credentials(monkeypatch, tmp_path)
    store = S3ArtifactStore(
        "bucket", endpoint_url=silent_endpoint, region="us-east-1", read_timeout=60.0
    )
    yield store
    await store.aclose()


@pytest.mark.parametrize("reason", [StopReason.LEASE_LOST, StopReason.SHUTDOWN])
async def test_a_lost_lease_or_shutdown_cancels_the_upload(
    options: ExecutionOptions, hanging_store: S3ArtifactStore, reason: StopReason
) -> None:
    hanging = dataclasses.replace(options, artifacts=hanging_store)

    async def stop_during_upload(execution: Execution, sink: MemorySink) -> None:
        while not any(m.startswith("starting:") for m in sink.system()):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the job has ended; the upload hangs on the silent server
        execution.stop(StopReason.CANCEL)  # too late for a cancel: the upload goes on
        await asyncio.sleep(0.2)
        execution.stop(reason)

    result = await asyncio.wait_for(
        run_job(sh('echo r > "$BATCHYARD_OUTPUT_DIR/r.txt"'), hanging, during=stop_during_upload),
        timeout=20,
    )
    assert result.outcome.stopped is reason
    assert result.outcome.results == ()
    assert ending(result.sink)[-2].startswith("results not stored: ")
