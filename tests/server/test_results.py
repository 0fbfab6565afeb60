"""Result assets on the server: what a worker reports with CompleteRun, ListRunResults,
DownloadRunResult (local directory and S3), and removal with the run."""

from __future__ import annotations

import hashlib
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from batchyard.client.connection import aio_channel
from batchyard.server.artifacts.location import parse_location
from batchyard.v1 import (
    definition_service_pb2_grpc,
    result_pb2,
    run_pb2,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb
from tests.rpc import failure
from tests.server.helpers import complete, define, fail_fields, get, lease, submit


def stored(
    root: Path, leased: Any, name: str, data: bytes, media_type: str = "text/plain"
) -> result_pb2.RunResult:
    """Puts a file where a worker would (the layout both tiers share) and describes it."""
    path = root / "runs" / leased.run / str(leased.attempt) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return result(name, data, leased.attempt, media_type)


def result(name: str, data: bytes, attempt: int, media_type: str = "text/plain") -> Any:
    return result_pb2.RunResult(
        name=name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=media_type,
        attempt=attempt,
    )


async def download(
    runs: Any, run: str, name: str
) -> tuple[list[rpb.DownloadRunResultResponse], bytes]:
    messages = [
        m async for m in runs.DownloadRunResult(rpb.DownloadRunResultRequest(run=run, name=name))
    ]
    return messages, b"".join(m.data for m in messages)


async def expect(call: Any, code: grpc.StatusCode) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    got = failure(info.value)
    assert got.code == code, got
    return got


async def test_results_listed_and_downloaded_byte_for_byte(
    definitions: Any, runs: Any, workers: Any, artifacts_dir: Path
) -> None:
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    big = bytes(range(256)) * 5000  # 1.28 MB: several chunks
    reported = [
        stored(artifacts_dir, leased, "out/table.csv", b"a,b\n1,2\n", "text/csv"),
        stored(artifacts_dir, leased, "blob.bin", big, "application/octet-stream"),
        stored(artifacts_dir, leased, "empty.txt", b""),
    ]
    await complete(workers, leased, results=reported)

    listed = (await runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid))).results
    assert [r.name for r in listed] == ["blob.bin", "empty.txt", "out/table.csv"]
    table = listed[2]
    assert (table.size_bytes, table.media_type, table.attempt) == (8, "text/csv", 1)
    assert table.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert table.HasField("create_time") and not table.download_url

    messages, data = await download(runs, run.uuid, "blob.bin")
    assert data == big and len(messages) >= 3
    assert messages[0].result.name == "blob.bin" and messages[0].result.size_bytes == len(big)
    assert all(not m.HasField("result") for m in messages[1:])
    messages, data = await download(runs, run.uuid, "empty.txt")
    assert data == b"" and len(messages) == 1 and messages[0].result.name == "empty.txt"


async def test_results_pages(
    definitions: Any, runs: Any, workers: Any, artifacts_dir: Path
) -> None:
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    names = [f"part-{i:02}.txt" for i in range(7)]
    await complete(
        workers, leased, results=[stored(artifacts_dir, leased, n, n.encode()) for n in names]
    )
    seen, token = [], ""
    while True:
        page = await runs.ListRunResults(
            rpb.ListRunResultsRequest(run=run.uuid, page_size=3, page_token=token)
        )
        seen += [r.name for r in page.results]
        token = page.next_page_token
        if not token:
            break
    assert seen == names


async def test_results_are_those_of_the_current_attempt(
    definitions: Any, runs: Any, workers: Any, artifacts_dir: Path
) -> None:
    await define(definitions, retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s"})
    run = await submit(runs, "job")
    (first,) = await lease(workers)
    await complete(
        workers,
        first,
        status=run_pb2.RUN_STATUS_FAILED,
        results=[stored(artifacts_dir, first, "report.txt", b"attempt one")],
        **fail_fields(),
    )
    (second,) = await lease(workers)
    assert second.attempt == 2
    listed = await runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid))
    assert list(listed.results) == []  # attempt 2 has stored nothing yet
    await expect(
        runs.DownloadRunResult(rpb.DownloadRunResultRequest(run=run.uuid, name="report.txt")),
        grpc.StatusCode.NOT_FOUND,
    )
    await complete(workers, second, results=[stored(artifacts_dir, second, "report.txt", b"two")])
    listed = await runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid))
    assert [(r.name, r.attempt) for r in listed.results] == [("report.txt", 2)]
    assert (await download(runs, run.uuid, "report.txt"))[1] == b"two"


async def test_a_repeated_completion_stores_results_once(
    definitions: Any, runs: Any, workers: Any, artifacts_dir: Path
) -> None:
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    reported = [stored(artifacts_dir, leased, "a.txt", b"a")]
    await complete(workers, leased, results=reported)
    await complete(workers, leased, results=reported)  # the worker's retry of the call
    listed = await runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid))
    assert [r.name for r in listed.results] == ["a.txt"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "../escape.txt"}, "results[0].name"),
        ({"name": "/etc/passwd"}, "results[0].name"),
        ({"name": "a//b"}, "results[0].name"),
        ({"name": "a\\b"}, "results[0].name"),
        ({"name": "nul\x00byte"}, "results[0].name"),
        ({"name": "x" * 1025}, "results[0].name"),
        ({"sha256": "ABC"}, "results[0].sha256"),
        ({"size_bytes": -1}, "results[0].size_bytes"),
        ({"media_type": "not a type"}, "results[0].media_type"),
        ({"attempt": 7}, "results[0].attempt"),
    ],
)
async def test_bad_results_are_refused_and_change_nothing(
    definitions: Any, runs: Any, workers: Any, change: dict[str, Any], field: str
) -> None:
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    bad = result("ok.txt", b"x", leased.attempt)
    for key, value in change.items():
        setattr(bad, key, value)
    got = await expect(complete(workers, leased, results=[bad]), grpc.StatusCode.INVALID_ARGUMENT)
    assert field in got.fields
    assert (await get(runs, run.uuid)).status == run_pb2.RUN_STATUS_RUNNING


async def test_names_reported_twice_are_refused(definitions: Any, runs: Any, workers: Any) -> None:
    await define(definitions)
    await submit(runs, "job")
    (leased,) = await lease(workers)
    twice = [result("a.txt", b"1", 1), result("a.txt", b"2", 1)]
    got = await expect(complete(workers, leased, results=twice), grpc.StatusCode.INVALID_ARGUMENT)
    assert "results[1].name" in got.fields


async def test_missing_run_result_and_file(
    definitions: Any, runs: Any, workers: Any, artifacts_dir: Path
) -> None:
    missing = str(uuid.uuid4())
    got = await expect(
        runs.ListRunResults(rpb.ListRunResultsRequest(run=missing)), grpc.StatusCode.NOT_FOUND
    )
    assert got.reason == "RUN_NOT_FOUND"
    got = await expect(
        runs.DownloadRunResult(rpb.DownloadRunResultRequest(run=missing, name="a")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert got.reason == "RUN_NOT_FOUND"
    await expect(
        runs.ListRunResults(rpb.ListRunResultsRequest(run="nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    await complete(workers, leased, results=[stored(artifacts_dir, leased, "kept.txt", b"k")])
    got = await expect(
        runs.DownloadRunResult(rpb.DownloadRunResultRequest(run=run.uuid, name="other.txt")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert got.reason == "RESULT_NOT_FOUND"
    got = await expect(
        runs.DownloadRunResult(rpb.DownloadRunResultRequest(run=run.uuid, name="../kept.txt")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "name" in got.fields
    (artifacts_dir / "runs" / run.uuid / "1" / "kept.txt").unlink()  # the store lost it
    got = await expect(
        runs.DownloadRunResult(rpb.DownloadRunResultRequest(run=run.uuid, name="kept.txt")),
        grpc.StatusCode.NOT_FOUND,
    )
    assert got.reason == "RESULT_NOT_FOUND" and "kept.txt" in got.message


async def test_deleting_a_run_removes_its_results(
    definitions: Any, runs: Any, workers: Any, artifacts_dir: Path, server: Any
) -> None:
    await define(definitions)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    await complete(workers, leased, results=[stored(artifacts_dir, leased, "gone.txt", b"g")])
    await runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid))
    await expect(
        runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid)), grpc.StatusCode.NOT_FOUND
    )
    await server._results.stop()  # waits for the background removal
    assert not (artifacts_dir / "runs" / run.uuid).exists()


async def test_results_on_s3_have_presigned_urls(
    server_factory: Any, s3: Any, s3_endpoint: str, bucket: str
) -> None:
    location = parse_location(f"s3://{bucket}/team/a", endpoint_url=s3_endpoint)
    app = await server_factory(artifacts=location)
    channel = aio_channel(f"127.0.0.1:{app.port}")

    definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    runs = run_service_pb2_grpc.RunServiceStub(channel)
    workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
    try:
        await define(definitions)
        run = await submit(runs, "job")
        (leased,) = await lease(workers)
        data = b"x,y\n" * 100_000  # 400 kB
        key = f"team/a/runs/{leased.run}/{leased.attempt}/data/points.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        await complete(workers, leased, results=[result("data/points.csv", data, 1, "text/csv")])

        (listed,) = (await runs.ListRunResults(rpb.ListRunResultsRequest(run=run.uuid))).results
        assert listed.download_url.startswith(s3_endpoint)
        assert listed.HasField("download_url_expire_time")
        with urllib.request.urlopen(listed.download_url, timeout=10) as response:
            assert response.read() == data
        assert (await download(runs, run.uuid, "data/points.csv"))[1] == data

        await runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid))
        await app._results.stop()
        left = s3.list_objects_v2(Bucket=bucket)
        assert left.get("KeyCount", 0) == 0
    finally:
        await channel.close(None)


def test_artifact_locations_parse() -> None:
    local = parse_location("~/results")
    assert local.directory is not None and local.directory.is_absolute()
    s3 = parse_location("s3://bucket/some/prefix/", region="eu-west-1")
    assert (s3.bucket, s3.prefix, s3.region) == ("bucket", "some/prefix/", "eu-west-1")
    assert parse_location("s3://bucket").prefix == ""
    for bad in ("", "s3://", "s3://b/a/../c", "http://x/y", "gs://b/p"):
        with pytest.raises(ValueError, match="--artifacts"):
            parse_location(bad)
