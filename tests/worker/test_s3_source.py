"""S3 sources against a real moto server on 127.0.0.1: one object, a prefix, failures."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.attempt import Execution, ExecutionOptions
from batchyard.worker.outcome import StopReason
from batchyard.worker.sources.catalog import SourceSettings
from batchyard.worker.sources.port import SourceError
from batchyard.worker.sources.s3 import S3Limits, parse_s3_uri, relative_parts
from tests.processes import free_port
from tests.worker.jobs import MemorySink, run_job
from tests.worker.test_sources import assert_source_unavailable

pytestmark = pytest.mark.usefixtures("aws_env")  # no profile of the machine's


@pytest.fixture
def s3_options(options: ExecutionOptions) -> ExecutionOptions:
    """Fast failures: one attempt per request, short timeouts."""
    limits = S3Limits(connect_timeout=2.0, read_timeout=5.0, max_attempts=1)
    return dataclasses.replace(options, sources=SourceSettings(s3=limits))


def s3_job(
    uri: str,
    endpoint: str,
    location: str = "",
    *,
    job_type: job_pb2.JobType.ValueType = job_pb2.JOB_TYPE_PYTHON,
    args: tuple[str, ...] = (),
) -> job_pb2.JobConfig:
    return job_pb2.JobConfig(
        type=job_type,
        source=job_pb2.Source(
            s3=job_pb2.S3Source(uri=uri, region="us-east-1", endpoint_url=endpoint)
        ),
        source_location=location,
        args=list(args),
    )


async def test_one_object_is_the_script(
    s3: Any, bucket: str, s3_endpoint: str, s3_options: ExecutionOptions
) -> None:
    s3.put_object(Bucket=bucket, Key="jobs/daily/hello.py", Body=b"print('hello from s3')\n")
    config = s3_job(f"s3://{bucket}/jobs/daily/hello.py", s3_endpoint, "hello.py")
    result = await run_job(config, s3_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stdout") == ["hello from s3"]
    assert (
        f"source ready: 1 file(s), 23 bytes from s3://{bucket}/jobs/daily/hello.py"
        in result.sink.system()
    )


async def test_a_large_object_arrives_whole(
    s3: Any, bucket: str, s3_endpoint: str, s3_options: ExecutionOptions
) -> None:
    """Several download chunks; the job checks the bytes it got."""
    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB: more than one chunk
    s3.put_object(Bucket=bucket, Key="blob/data.bin", Body=data)
    s3.put_object(
        Bucket=bucket,
        Key="blob/check.py",
        Body=b"import hashlib, pathlib\n"
        b"print(hashlib.sha256((pathlib.Path(__file__).parent / 'data.bin').read_bytes())"
        b".hexdigest())\n",
    )
    result = await run_job(s3_job(f"s3://{bucket}/blob/", s3_endpoint, "check.py"), s3_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stdout") == [hashlib.sha256(data).hexdigest()]


async def test_prefix_downloads_nested_files(
    s3: Any, bucket: str, s3_endpoint: str, s3_options: ExecutionOptions
) -> None:
    script = (
        "import pathlib, sys\n"
        "here = pathlib.Path(__file__).parent\n"
        "print((here / 'conf' / 'deep' / 'settings.txt').read_text().strip())\n"
        "print(sorted(str(p.relative_to(here)) for p in here.rglob('*') if p.is_file()))\n"
    )
    s3.put_object(Bucket=bucket, Key="project/main.py", Body=script.encode())
    s3.put_object(Bucket=bucket, Key="project/conf/deep/settings.txt", Body=b"nested value\n")
    s3.put_object(Bucket=bucket, Key="project/conf/", Body=b"")  # a console "folder"
    s3.put_object(Bucket=bucket, Key="project/lib/util.py", Body=b"X = 1\n")
    s3.put_object(Bucket=bucket, Key="projectile/not-below.txt", Body=b"no\n")
    s3.put_object(Bucket=bucket, Key="other/main.py", Body=b"raise SystemExit(3)\n")
    result = await run_job(s3_job(f"s3://{bucket}/project/", s3_endpoint), s3_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stdout") == [
        "nested value",
        "['conf/deep/settings.txt', 'lib/util.py', 'main.py']",
    ]


async def test_a_shell_job_cats_a_nested_file(
    s3: Any, bucket: str, s3_endpoint: str, s3_options: ExecutionOptions
) -> None:
    s3.put_object(Bucket=bucket, Key="sh/run.sh", Body=b'cat "$(dirname "$0")/a/b/c.txt"\n')
    s3.put_object(Bucket=bucket, Key="sh/a/b/c.txt", Body=b"from a nested key\n")
    config = s3_job(f"s3://{bucket}/sh/", s3_endpoint, "run.sh", job_type=job_pb2.JOB_TYPE_SHELL)
    result = await run_job(config, s3_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stdout") == ["from a nested key"]


async def test_keys_that_would_escape_are_skipped(
    s3: Any, bucket: str, s3_endpoint: str, s3_options: ExecutionOptions, tmp_path: Path
) -> None:
    s3.put_object(Bucket=bucket, Key="p/main.py", Body=b"print('ran')\n")
    escaping = ["p/../escaped.txt", "p/a/../../escaped2.txt", "p//abs.txt", "p/./dot.txt"]
    for key in escaping:
        s3.put_object(Bucket=bucket, Key=key, Body=b"escaped\n")
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="p/")["Contents"]}
    assert set(escaping) <= listed, listed  # the store keeps the keys as they are
    result = await run_job(s3_job(f"s3://{bucket}/p/", s3_endpoint), s3_options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    assert result.sink.lines_of("stdout") == ["ran"]
    system = result.sink.system()
    for key in escaping:
        assert f"skipped s3 key {key!r}: it would not stay inside the source directory" in system
    assert any("1 file(s)" in line and "4 skipped" in line for line in system), system
    written = [p.name for p in tmp_path.rglob("*") if p.name.startswith(("escaped", "abs", "dot"))]
    assert written == []


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("s3://{bucket}/missing.py", "NoSuchKey"),
        ("s3://no-such-bucket-{bucket}/main.py", "NoSuchBucket"),
        ("s3://no-such-bucket-{bucket}/prefix/", "NoSuchBucket"),
        ("s3://{bucket}/empty/", "no objects below the prefix"),
        ("s3://{bucket}/", "no objects below the prefix"),
        ("s3://{bucket}/dir/..", "is not a file name"),
        ("s3://{bucket}", "names no object"),
        ("https://{bucket}/main.py", "must start with 's3://'"),
    ],
)
async def test_unavailable_sources_fail_cleanly(
    bucket: str, s3_endpoint: str, s3_options: ExecutionOptions, uri: str, fragment: str
) -> None:
    uri = uri.format(bucket=bucket)
    result = await run_job(s3_job(uri, s3_endpoint, "main.py"), s3_options)
    assert_source_unavailable(result, fragment)
    assert any(
        line.startswith("source unavailable:") and fragment in line for line in result.sink.system()
    ), result.sink.system()


async def test_unreachable_endpoint_fails_cleanly(
    bucket: str, s3_options: ExecutionOptions
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = await run_job(s3_job(f"s3://{bucket}/main.py", endpoint), s3_options)
    assert_source_unavailable(result, f"cannot download s3://{bucket}/main.py")
    assert "connect" in result.outcome.message.lower()


async def test_bad_endpoint_url_is_refused(bucket: str, s3_options: ExecutionOptions) -> None:
    result = await run_job(s3_job(f"s3://{bucket}/main.py", "ftp://127.0.0.1"), s3_options)
    assert_source_unavailable(result, "must start with http:// or https://")


async def test_missing_credentials_fail_cleanly(
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    s3_options: ExecutionOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3.put_object(Bucket=bucket, Key="main.py", Body=b"print(1)\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = await run_job(s3_job(f"s3://{bucket}/main.py", s3_endpoint), s3_options)
    assert_source_unavailable(result, "Unable to locate credentials")


@pytest.mark.parametrize(
    ("limits", "fragment"),
    [
        (S3Limits(max_objects=2, max_attempts=1), "holds more than 2 objects"),
        (S3Limits(max_bytes=20, max_attempts=1), "holds more than 20 bytes"),
    ],
)
async def test_prefix_downloads_are_bounded(
    s3: Any,
    bucket: str,
    s3_endpoint: str,
    options: ExecutionOptions,
    limits: S3Limits,
    fragment: str,
) -> None:
    for name in ("main.py", "a.txt", "b.txt"):
        s3.put_object(Bucket=bucket, Key=f"many/{name}", Body=b"print('x')\n")
    options = dataclasses.replace(options, sources=SourceSettings(s3=limits))
    result = await run_job(s3_job(f"s3://{bucket}/many/", s3_endpoint), options)
    assert_source_unavailable(result, fragment)


async def test_one_object_is_bounded(
    s3: Any, bucket: str, s3_endpoint: str, options: ExecutionOptions
) -> None:
    s3.put_object(Bucket=bucket, Key="big.py", Body=b"#" * 100)
    options = dataclasses.replace(
        options, sources=SourceSettings(s3=S3Limits(max_bytes=99, max_attempts=1))
    )
    result = await run_job(s3_job(f"s3://{bucket}/big.py", s3_endpoint, "big.py"), options)
    assert_source_unavailable(result, "is larger than 99 bytes")


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://b/k/x.py").key == "k/x.py"
    assert not parse_s3_uri("s3://b/k/x.py").is_prefix
    assert parse_s3_uri("s3://b/k/").is_prefix
    assert parse_s3_uri("s3://b/").is_prefix
    for bad in ("s3://", "s3:///k", "s3://b", "b/k", "s3://b/k\x00"):
        with pytest.raises(SourceError):
            parse_s3_uri(bad)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("p/a.txt", ("a.txt",)),
        ("p/a/b.txt", ("a", "b.txt")),
        ("p/", ()),
        ("p/dir/", ()),
        ("p/../x", None),
        ("p/a/../../x", None),
        ("p//x", None),
        ("p/a//x", None),
        ("p/./x", None),
        ("p/..", None),
        ("p/a\x00b", None),
    ],
)
def test_relative_parts(key: str, expected: tuple[str, ...] | None) -> None:
    assert relative_parts(key, "p/") == expected


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_a_silent_endpoint_times_out(silent_endpoint: str, options: ExecutionOptions) -> None:
    limits = S3Limits(connect_timeout=1.0, read_timeout=1.0, max_attempts=1)
    options = dataclasses.replace(options, sources=SourceSettings(s3=limits))
    started = time.monotonic()
    result = await run_job(s3_job("s3://bucket/main.py", silent_endpoint), options)
    assert_source_unavailable(result, "cannot download s3://bucket/main.py")
    assert "timeout" in result.outcome.message.lower()
    assert time.monotonic() - started < 10


async def test_a_cancel_stops_the_download(silent_endpoint: str, options: ExecutionOptions) -> None:
    limits = S3Limits(connect_timeout=30.0, read_timeout=30.0, max_attempts=1)
    options = dataclasses.replace(options, sources=SourceSettings(s3=limits))

    async def cancel_soon(execution: Execution, sink: MemorySink) -> None:
        await asyncio.sleep(0.5)
        execution.stop(StopReason.CANCEL)

    started = time.monotonic()
    config = s3_job("s3://bucket/main.py", silent_endpoint)
    result = await run_job(config, options, during=cancel_soon)
    assert result.outcome.stopped is StopReason.CANCEL
    assert result.outcome.status == run_pb2.RUN_STATUS_CANCELLED
    assert "not starting the job: cancel requested by a user" in result.sink.system()
    assert time.monotonic() - started < 10
