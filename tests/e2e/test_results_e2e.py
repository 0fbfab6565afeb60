"""Result files end to end: a real worker process stores what a job writes, the server lists
and streams it back — with the local artifact directory and with S3 (a moto server on
127.0.0.1) on both sides."""

from __future__ import annotations

import hashlib
import random
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import grpc
import pytest

from batchyard.server.app import App
from batchyard.server.artifacts.location import parse_location
from batchyard.v1 import log_pb2, log_service_pb2, log_service_pb2_grpc, run_pb2
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e.jobs import define, submit, wait_for
from tests.s3 import use_test_credentials

WRITER = """
import os, pathlib, random, sys
out = pathlib.Path(os.environ["BATCHYARD_OUTPUT_DIR"])
attempt = int(os.environ["BATCHYARD_ATTEMPT"])
(out / "tables").mkdir()
(out / "tables" / "daily.csv").write_text(f"attempt,total\\n{attempt},10\\n")
(out / "blob.bin").write_bytes(random.Random(7).randbytes(1_500_000))
os.symlink("/etc/hostname", out / "escape")
if attempt == 1:
    (out / "first-only.txt").write_text("gone with attempt 1")
    sys.exit(3)
"""
BLOB = random.Random(7).randbytes(1_500_000)  # what WRITER writes to blob.bin
CSV = b"attempt,total\n2,10\n"


@pytest.fixture(params=["local", "s3"])
async def server(request: pytest.FixtureRequest, server_factory: Any) -> App:
    """The test's server with a local artifact directory, then with an S3 bucket."""
    if request.param == "local":
        app: App = await server_factory()
        return app
    endpoint = request.getfixturevalue("s3_endpoint")
    use_test_credentials(
        request.getfixturevalue("monkeypatch"), request.getfixturevalue("tmp_path")
    )
    bucket = f"results-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    location = parse_location(f"s3://{bucket}/team", endpoint_url=endpoint)
    s3_app: App = await server_factory(artifacts=location)
    return s3_app


def write(workspace: Path, name: str, text: str) -> None:
    (workspace / "jobs").mkdir(exist_ok=True)
    (workspace / "jobs" / name).write_text(text)


def python_job(script: str, **config: Any) -> dict[str, Any]:
    return {
        "type": "JOB_TYPE_PYTHON",
        "source": {"workspace": {"path": "jobs"}},
        "sourceLocation": script,
        **config,
    }


async def download(runs: Any, run: str, name: str) -> tuple[Any, bytes]:
    call = runs.DownloadRunResult(rpb.DownloadRunResultRequest(run=run, name=name))
    first = None
    data = bytearray()
    async for message in call:
        if first is None:
            first = message.result
        data += message.data
    return first, bytes(data)


async def test_what_a_job_writes_is_listed_and_downloaded_byte_for_byte(
    server: App,
    channel: grpc.aio.Channel,
    definitions: Any,
    runs: Any,
    workspace: Path,
    start_worker: Any,
) -> None:
    write(workspace, "writer.py", WRITER)
    await define(
        definitions,
        "writer",
        python_job("writer.py", retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s"}),
    )
    start_worker()
    run = await submit(runs, "writer")
    final = await wait_for(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED, final
    assert len(final.attempts) == 2

    listed = (await runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid))).results
    assert [(r.name, r.size_bytes, r.sha256, r.media_type, r.attempt) for r in listed] == [
        ("blob.bin", len(BLOB), hashlib.sha256(BLOB).hexdigest(), "application/octet-stream", 2),
        ("tables/daily.csv", len(CSV), hashlib.sha256(CSV).hexdigest(), "text/csv", 2),
    ]
    for result, expected in zip(listed, (BLOB, CSV), strict=True):
        meta, data = await download(runs, run.uuid, result.name)
        assert data == expected
        assert (meta.name, meta.sha256) == (result.name, result.sha256)

    on_s3 = server.settings.artifacts.bucket != ""
    for result, expected in zip(listed, (BLOB, CSV), strict=True):
        if not on_s3:
            assert result.download_url == ""
            continue
        with urllib.request.urlopen(result.download_url, timeout=10) as response:
            assert response.read() == expected

    logs = log_service_pb2_grpc.LogServiceStub(channel)
    entries = (await logs.GetLogs(log_service_pb2.GetLogsRequest(run=run.uuid))).entries
    system = [(e.attempt, e.message) for e in entries if e.stream == log_pb2.LOG_STREAM_SYSTEM]
    first = f"stored 3 result file(s), {len(BLOB) + len(CSV) + 19} bytes, 1 skipped"
    assert (1, first) in system  # attempt 1's results were stored, then replaced
    total_2 = len(BLOB) + len(CSV)
    assert (2, f"stored 2 result file(s), {total_2} bytes, 1 skipped") in system
    assert (2, "result 'escape' skipped: a symlink (never followed)") in system
    ended = [i for i, (a, m) in enumerate(system) if a == 2 and m.startswith("attempt ended")]
    assert system.index((2, f"stored 2 result file(s), {total_2} bytes, 1 skipped")) < ended[0]


async def test_results_the_worker_cannot_store_fail_the_run(
    server: App, definitions: Any, runs: Any, workspace: Path, tmp_path: Path, start_worker: Any
) -> None:
    write(workspace, "one.py", WRITER.replace("if attempt == 1:", "if False:"))
    await define(definitions, "one", python_job("one.py"))
    if server.settings.artifacts.bucket:
        unusable = f"s3://missing-{uuid.uuid4().hex[:10]}/"
    else:
        unusable = str(tmp_path / "a-file")
        (tmp_path / "a-file").write_bytes(b"not a directory")
    start_worker("--artifacts", unusable)
    run = await submit(runs, "one")
    final = await wait_for(runs, run.uuid)
    assert final.status == run_pb2.RUN_STATUS_FAILED, final
    assert final.reason == run_pb2.RUN_REASON_RESULT_UPLOAD_FAILED
    assert final.attempts[0].exit_code == 0
    assert (await runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid))).results == []
