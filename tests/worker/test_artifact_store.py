"""The artifact stores with real backends: a local directory and a moto S3 server on
127.0.0.1 — bytes, SHA-256, multipart uploads, no half-written files, failures."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import socket
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from batchyard.worker.results.artifacts import (
    HOP_BYTES,
    LocalArtifactStore,
    S3ArtifactStore,
    SourceChanged,
    UploadError,
    result_key,
)
from batchyard.worker.results.location import ArtifactLocation, parse_location
from batchyard.worker.results.store import ResultLimits, open_below, store_results

MIB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("aws_env")  # no profile of the machine's


@pytest.fixture
async def s3_store(bucket: str, s3_endpoint: str) -> AsyncIterator[S3ArtifactStore]:
    store = S3ArtifactStore(
        bucket,
        "team/",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        connect_timeout=2.0,
        read_timeout=5.0,
        max_attempts=1,
        part_bytes=5 * MIB,
    )
    yield store
    await store.aclose()


def source(tmp_path: Path, name: str, data: bytes) -> functools.partial[Any]:
    """An opener of a new file holding ``data``, the way results hand files to a store."""
    directory = tmp_path / "output"
    directory.mkdir(exist_ok=True)
    (directory / name).write_bytes(data)
    return functools.partial(open_below, directory, (name,))


async def test_local_put_is_byte_for_byte_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 7)
    store = LocalArtifactStore(tmp_path / "store")
    stored = await store.put(
        "runs/r/1/a/b.bin", source(tmp_path, "b.bin", data), size=len(data), media_type="x/y"
    )
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    target = tmp_path / "store" / "runs" / "r" / "1" / "a" / "b.bin"
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["b.bin"]


async def test_local_put_of_a_large_file_takes_several_hops(tmp_path: Path) -> None:
    data = os.urandom(HOP_BYTES + 5)
    store = LocalArtifactStore(tmp_path / "store")
    stored = await store.put("big", source(tmp_path, "big", data), size=len(data), media_type="")
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (tmp_path / "store" / "big").read_bytes() == data


async def test_a_cancelled_local_put_leaves_nothing_behind(tmp_path: Path) -> None:
    data = os.urandom(4 * HOP_BYTES)
    store = LocalArtifactStore(tmp_path / "store")
    put = asyncio.create_task(
        store.put("runs/r/1/f", source(tmp_path, "f", data), size=len(data), media_type="")
    )
    await asyncio.sleep(0)  # the first hop is under way
    put.cancel()
    await asyncio.wait((put,))
    assert put.cancelled()
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


async def test_local_put_of_a_file_that_grew_stores_nothing(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(SourceChanged, match="grew past its listed size of 3 bytes"):
        await store.put("runs/r/1/f", source(tmp_path, "f", b"four"), size=3, media_type="x/y")
    assert os.listdir(tmp_path / "store" / "runs" / "r" / "1") == []


async def test_local_put_into_an_unusable_directory_is_an_upload_error(tmp_path: Path) -> None:
    (tmp_path / "store").write_bytes(b"a file, not a directory")
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(UploadError, match="cannot write to"):
        await store.put("runs/r/1/f", source(tmp_path, "f", b"x"), size=1, media_type="x/y")


async def test_s3_put_of_a_small_file(
    s3_store: S3ArtifactStore, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = b"name,value\nx,1\n"
    stored = await s3_store.put(
        "runs/r/1/t.csv", source(tmp_path, "t.csv", data), size=len(data), media_type="text/csv"
    )
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    got = s3.get_object(Bucket=bucket, Key="team/runs/r/1/t.csv")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/csv"


async def test_s3_put_of_a_large_file_is_multipart(
    s3_store: S3ArtifactStore, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(12 * MIB + 3)  # three parts of 5 MiB
    stored = await s3_store.put(
        "runs/r/1/big.bin", source(tmp_path, "big.bin", data), size=len(data), media_type="a/b"
    )
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    head = s3.head_object(Bucket=bucket, Key="team/runs/r/1/big.bin")
    assert head["ETag"].endswith('-3"')  # S3's mark of a three-part upload
    body = s3.get_object(Bucket=bucket, Key="team/runs/r/1/big.bin")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.sha256


async def test_s3_multipart_of_a_file_that_grew_is_aborted(
    s3_store: S3ArtifactStore, s3: Any, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(11 * MIB)
    with pytest.raises(SourceChanged, match="grew past"):
        await s3_store.put(
            "runs/r/1/grew", source(tmp_path, "grew", data), size=6 * MIB, media_type="a/b"
        )
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


async def test_s3_missing_bucket_is_an_upload_error(s3_endpoint: str, tmp_path: Path) -> None:
    store = S3ArtifactStore(
        "no-such-bucket-here", endpoint_url=s3_endpoint, region="us-east-1", max_attempts=1
    )
    try:
        with pytest.raises(UploadError, match="NoSuchBucket"):
            await store.put("runs/r/1/f", source(tmp_path, "f", b"x"), size=1, media_type="a/b")
    finally:
        await store.aclose()


async def test_s3_unreachable_endpoint_is_an_upload_error(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store = S3ArtifactStore(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        connect_timeout=1.0,
        read_timeout=1.0,
        max_attempts=1,
    )
    try:
        with pytest.raises(UploadError, match=r"cannot store s3://bucket/runs/r/1/f"):
            await asyncio.wait_for(
                store.put("runs/r/1/f", source(tmp_path, "f", b"x"), size=1, media_type="a/b"),
                timeout=30,
            )
    finally:
        await store.aclose()


async def test_results_of_an_attempt_land_in_the_shared_layout_on_s3(
    s3_store: S3ArtifactStore, s3: Any, bucket: str, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    (output / "tables").mkdir(parents=True)
    (output / "tables" / "t.csv").write_bytes(b"a\n1\n")
    (output / "log.txt").write_bytes(b"done\n")
    run = uuid.uuid4()
    stored = await store_results(
        s3_store,
        output,
        run=str(run).upper(),
        attempt=3,
        limits=ResultLimits(),
        note=lambda message: pytest.fail(message),
    )
    assert [f.name for f in stored.files] == ["log.txt", "tables/t.csv"]
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"team/runs/{run}/3/log.txt", f"team/runs/{run}/3/tables/t.csv"]
    body = s3.get_object(Bucket=bucket, Key=f"team/runs/{run}/3/tables/t.csv")["Body"].read()
    assert body == b"a\n1\n"


def test_result_keys() -> None:
    run = uuid.uuid4()
    assert result_key(str(run).upper(), 2, "a/b.txt") == f"runs/{run}/2/a/b.txt"
    assert result_key("run-1", 1, "x") == "runs/run-1/1/x"
    for bad in ("", "..", "a/b", "a b"):
        with pytest.raises(ValueError, match="cannot name a directory"):
            result_key(bad, 1, "x")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("s3://bucket", ArtifactLocation(bucket="bucket")),
        ("s3://bucket/", ArtifactLocation(bucket="bucket")),
        ("s3://bucket/team/results/", ArtifactLocation(bucket="bucket", prefix="team/results/")),
        ("s3://bucket/team", ArtifactLocation(bucket="bucket", prefix="team/")),
        ("/srv/artifacts", ArtifactLocation(directory=Path("/srv/artifacts"))),
        ("~/artifacts", ArtifactLocation(directory=Path.home().resolve() / "artifacts")),
    ],
)
def test_locations(raw: str, expected: ArtifactLocation) -> None:
    assert parse_location(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("s3:///prefix", "names no bucket"),
        ("s3://bucket/a//b", "an empty, '.' or '..' part"),
        ("s3://bucket/../b", "an empty, '.' or '..' part"),
        ("gs://bucket", "only a directory or s3://"),
    ],
)
def test_bad_locations(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_location(raw)
