"""S3 sources: one object, or every object below a prefix, downloaded with aiobotocore.

``s3://bucket/key`` downloads one object to ``<source dir>/<basename of key>``;
``s3://bucket/prefix/`` (ending in ``/``) downloads every object below the prefix to
``<source dir>/<key relative to the prefix>``. A key below a prefix that would not stay
inside the source directory (a ``..`` or ``.`` part, an empty part such as ``a//b`` or a
leading ``/``, a NUL) is skipped with a system entry; keys ending in ``/`` are the "folder"
markers of S3 consoles and are skipped quietly. The download is bounded (:class:`S3Limits`)
and streamed to disk in chunks: an object is never held in memory whole.

Credentials come from the worker's environment or profile (aiobotocore's default chain),
never from the job. Region and endpoint URL (for S3-compatible stores) come from the source.
Every failure — a missing bucket or object, an empty prefix, access denied, an unreachable
endpoint (bounded by timeouts), a download over the limits — raises
:class:`~batchyard.worker.sources.port.SourceError` with the cause, which fails the attempt as
SOURCE_UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from batchyard.config import Flag, Values, duration, integer, size
from batchyard.v1 import job_pb2
from batchyard.worker.sources.port import Note, SourceError

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class S3Limits:
    """Bounds on one S3 source download."""

    max_objects: int = 10_000
    max_bytes: int = 5 * 1024**3
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 3
    """botocore's attempts per request (retries of throttling and transient errors)."""

    @classmethod
    def from_values(cls, values: Values) -> S3Limits:
        return cls(
            max_objects=values[MAX_OBJECTS],
            max_bytes=values[MAX_BYTES],
            connect_timeout=values[CONNECT_TIMEOUT],
            read_timeout=values[READ_TIMEOUT],
            max_attempts=values[MAX_ATTEMPTS],
        )


MAX_S3_ATTEMPTS = 20
_TIMEOUT = duration(0.001, 7 * 24 * 3600.0)
MAX_OBJECTS = Flag(
    "s3-source-max-objects",
    integer(1),
    "objects an S3 source prefix may hold",
    default=S3Limits.max_objects,
)
MAX_BYTES = Flag(
    "s3-source-max-bytes", size(1), "what an S3 source may download", default=S3Limits.max_bytes
)
CONNECT_TIMEOUT = Flag(
    "s3-connect-timeout",
    _TIMEOUT,
    "how long connecting to S3 may take, for sources and the artifact store",
    default=S3Limits.connect_timeout,
)
READ_TIMEOUT = Flag(
    "s3-read-timeout",
    _TIMEOUT,
    "how long an S3 read may wait, for sources and the artifact store",
    default=S3Limits.read_timeout,
)
MAX_ATTEMPTS = Flag(
    "s3-max-attempts",
    integer(1, MAX_S3_ATTEMPTS),
    "attempts per S3 request, retries of throttling and transient errors included",
    default=S3Limits.max_attempts,
)
FLAGS = (MAX_OBJECTS, MAX_BYTES, CONNECT_TIMEOUT, READ_TIMEOUT, MAX_ATTEMPTS)


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://`` URI."""

    bucket: str
    key: str

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class S3Fetched:
    """What a download brought: files written, bytes, keys skipped."""

    files: int
    bytes: int
    skipped: int


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/key`` or ``s3://bucket/prefix/``; a bare ``s3://bucket/`` is the bucket."""
    if "\x00" in uri:
        raise SourceError("s3 uri contains a NUL character")
    if not uri.startswith("s3://"):
        raise SourceError(f"s3 uri {uri!r} must start with 's3://'")
    bucket, slash, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise SourceError(f"s3 uri {uri!r} names no bucket")
    if not slash:
        raise SourceError(f"s3 uri {uri!r} names no object (end it in '/' for a prefix)")
    return S3Location(bucket, key)


def relative_parts(key: str, prefix: str) -> tuple[str, ...] | None:
    """The parts of ``key`` below ``prefix`` as a safe relative path; None when unsafe.

    A key that is a "folder" marker (ending in ``/``) gives ``()``.
    """
    rest = key[len(prefix) :]
    if rest == "" or rest.endswith("/"):
        return ()
    parts = tuple(rest.split("/"))
    if any(part in ("", ".", "..") or "\x00" in part for part in parts):
        return None
    return parts


async def fetch_s3(
    source: job_pb2.S3Source,
    destination: Path,
    *,
    note: Callable[[str], None],
    limits: S3Limits | None = None,
) -> S3Fetched:
    """Downloads ``source`` into ``destination`` (created); ``note`` gets system warnings."""
    limits = limits or S3Limits()
    location = parse_s3_uri(source.uri)
    with s3_errors(f"cannot download {location}"):
        async with s3_client(source, limits) as client:
            if location.is_prefix:
                return await _fetch_prefix(client, location, destination, note, limits)
            return await _fetch_object(client, location, destination, limits)


@contextlib.asynccontextmanager
async def s3_client(source: job_pb2.S3Source, limits: S3Limits) -> AsyncIterator[Any]:
    """An aiobotocore S3 client for the source's region and endpoint, bounded by ``limits``
    (credentials from the default chain)."""
    endpoint = source.endpoint_url or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise SourceError(f"s3 endpoint_url {endpoint!r} must start with http:// or https://")
    config = AioConfig(
        connect_timeout=limits.connect_timeout,
        read_timeout=limits.read_timeout,
        retries={"max_attempts": limits.max_attempts, "mode": "standard"},
    )
    session = get_session()
    async with session.create_client(
        "s3", region_name=source.region or None, endpoint_url=endpoint, config=config
    ) as client:
        yield client


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Turns S3, network and file errors into a SourceError that starts with ``what``."""
    try:
        yield
    except ClientError as exc:
        raise SourceError(f"{what}: {_client_error(exc)}") from None
    except BotoCoreError as exc:
        raise SourceError(f"{what}: {exc}") from None
    except TimeoutError:
        raise SourceError(f"{what}: timed out") from None
    except aiohttp.ClientError as exc:  # a connection broken mid-object
        raise SourceError(f"{what}: {exc or type(exc).__name__}") from None
    except OSError as exc:  # writing below the source directory
        raise SourceError(f"{what}: {exc.strerror or exc}") from None


class S3Source:
    """The job's S3 object or prefix, downloaded into the attempt's directory."""

    writes_files = True

    def __init__(self, source: job_pb2.S3Source, limits: S3Limits) -> None:
        self._source = source
        self._limits = limits
        self._fetched: S3Fetched | None = None

    async def fetch(self, destination: Path, note: Note) -> Path:
        self._fetched = await fetch_s3(self._source, destination, note=note, limits=self._limits)
        return await asyncio.to_thread(destination.resolve)

    def describe(self) -> str:
        fetched = self._fetched
        if fetched is None:
            return ""
        skipped = f", {fetched.skipped} skipped" if fetched.skipped else ""
        return (
            f"source ready: {fetched.files} file(s), {fetched.bytes} bytes from "
            f"{self._source.uri}{skipped}"
        )


async def _fetch_object(
    client: Any, location: S3Location, destination: Path, limits: S3Limits
) -> S3Fetched:
    name = location.key.rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        raise SourceError(f"{location}: the key's last part {name!r} is not a file name")
    await asyncio.to_thread(destination.mkdir, mode=0o700, parents=True, exist_ok=True)
    target = destination / name
    size = await _download(client, location.bucket, location.key, target, limits.max_bytes)
    return S3Fetched(files=1, bytes=size, skipped=0)


async def _fetch_prefix(
    client: Any,
    location: S3Location,
    destination: Path,
    note: Callable[[str], None],
    limits: S3Limits,
) -> S3Fetched:
    wanted: list[tuple[str, tuple[str, ...]]] = []
    total = 0
    skipped = 0
    paginator = client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=location.bucket, Prefix=location.key):
        for item in page.get("Contents", ()):
            key: str = item["Key"]
            parts = relative_parts(key, location.key)
            if parts is None:
                skipped += 1
                note(f"skipped s3 key {key!r}: it would not stay inside the source directory")
                continue
            if not parts:
                continue
            wanted.append((key, parts))
            total += int(item.get("Size", 0))
            if len(wanted) > limits.max_objects:
                raise SourceError(f"{location} holds more than {limits.max_objects} objects")
            if total > limits.max_bytes:
                raise SourceError(f"{location} holds more than {limits.max_bytes} bytes")
    if not wanted:
        raise SourceError(f"{location}: no objects below the prefix")
    await asyncio.to_thread(destination.mkdir, mode=0o700, parents=True, exist_ok=True)
    written = 0
    files = 0
    for key, parts in wanted:
        target = destination.joinpath(*parts)
        try:
            await asyncio.to_thread(_make_parents, destination, parts)
        except OSError as exc:
            skipped += 1
            note(f"skipped s3 key {key!r}: {exc.strerror or exc}")
            continue
        budget = limits.max_bytes - written
        written += await _download(client, location.bucket, key, target, budget)
        files += 1
    return S3Fetched(files=files, bytes=written, skipped=skipped)


def _make_parents(root: Path, parts: tuple[str, ...]) -> None:
    """Creates the directories of ``parts`` below ``root``, refusing symlinks on the way."""
    directory = root
    for part in parts[:-1]:
        directory = directory / part
        try:
            directory.mkdir(0o700)
        except FileExistsError:
            if directory.is_symlink() or not directory.is_dir():
                raise NotADirectoryError(20, "a file of that name is in the way") from None


async def _download(client: Any, bucket: str, key: str, target: Path, max_bytes: int) -> int:
    """Streams one object to a new file at ``target``; returns its size (<= ``max_bytes``)."""
    response = await client.get_object(Bucket=bucket, Key=key)
    length = int(response.get("ContentLength") or 0)
    if length > max_bytes:
        response["Body"].close()
        raise SourceError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes")
    try:
        file = await asyncio.to_thread(_create, target)
    except OSError as exc:
        response["Body"].close()
        raise SourceError(f"cannot write s3://{bucket}/{key}: {exc.strerror or exc}") from None
    size = 0
    try:
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise SourceError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes")
                await asyncio.to_thread(file.write, chunk)
    finally:
        await asyncio.to_thread(file.close)
    return size


def _create(target: Path) -> BinaryIO:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


def _client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = error.get("Code") or "error"
    message = error.get("Message") or ""
    return f"{code}: {message}" if message else str(code)
