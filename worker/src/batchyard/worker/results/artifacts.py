"""The artifact store result files go to: a local directory, or S3 through aiobotocore.

Worker and server share one layout (``--artifacts`` on both): result NAME of attempt A of run
R is ``runs/R/A/NAME`` below the directory or below the S3 prefix (:func:`result_key`).

A store copies one file per :meth:`ArtifactStore.put`, streaming it in bounded chunks and
computing its SHA-256 on the way; a file is never read into memory whole.

* :class:`LocalArtifactStore` writes to a temporary name in the destination directory,
  fsyncs, then renames: a half-written file is never visible under its name. The copy runs
  in worker threads, one hop per :data:`HOP_BYTES` (a small file: one hop in all).
* :class:`S3ArtifactStore` sends a file of up to :data:`PART_BYTES` with one PutObject and a
  larger one as a multipart upload (one part in memory at a time; aborted on failure or
  cancellation). Its client is made on the first put and kept until :meth:`aclose`; an
  attempt without results never creates one. botocore retries throttling and transient
  errors (``max_attempts``) and checks each request's integrity (CRC32 by default).

Failures of the store raise :class:`UploadError`; a source file that cannot be read as it
was listed (gone, replaced by something else, grown past its size) raises
:class:`SourceChanged`, which skips just that file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

CHUNK_BYTES = 1024 * 1024
"""Bytes read from a file at a time."""
HOP_BYTES = 16 * 1024 * 1024
"""Bytes a local copy moves per thread hop."""
PART_BYTES = 8 * 1024 * 1024
"""Part size of multipart uploads (S3's minimum is 5 MiB); smaller files take one PutObject."""
MAX_PARTS = 10_000
"""S3's limit on the parts of one upload: a file over PART_BYTES * MAX_PARTS gets larger parts."""

Opener = Callable[[], BinaryIO]
"""Opens the file to store (called in a worker thread); raises SourceChanged when it cannot."""


class UploadError(Exception):
    """The artifact store refused or could not be reached (after botocore's own retries)."""


class SourceChanged(Exception):
    """The file to store is no longer what was listed; the message says how."""


@dataclass(frozen=True)
class Stored:
    """What was stored: bytes and their SHA-256 (lowercase hex)."""

    size: int
    sha256: str


class ArtifactStore(Protocol):
    """Where a worker puts result files."""

    def describe(self) -> str:
        """Where, for messages (no credentials)."""
        ...

    async def put(self, key: str, open_file: Opener, *, size: int, media_type: str) -> Stored:
        """Stores the file at ``key`` (a layout path, validated by the caller). At most
        ``size`` bytes are read: a file found larger raises SourceChanged."""
        ...

    async def aclose(self) -> None:
        """Releases connections (idempotent)."""
        ...


def result_key(run: str, attempt: int, name: str) -> str:
    """``runs/<run>/<attempt>/<name>``: a run uuid in its canonical lowercase form.

    ``name`` must already be a valid result name; a run id that is neither a uuid nor one
    safe path component (tests use names like ``run-1``) raises ValueError.
    """
    try:
        run = str(uuid.UUID(run))
    except ValueError:
        if run in ("", ".", "..") or not all(
            c.isascii() and (c.isalnum() or c in "._-") for c in run
        ):
            raise ValueError(f"run id {run!r} cannot name a directory") from None
    return f"runs/{run}/{attempt}/{name}"


def _read(source: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes of the file being stored; SourceChanged when it cannot be read."""
    try:
        return source.read(size)
    except OSError as exc:
        raise SourceChanged(f"cannot be read: {exc.strerror or exc}") from None


def _grew(limit: int) -> str:
    return f"grew past its listed size of {limit} bytes while being stored"


class LocalArtifactStore:
    """Files below ``root`` (made on first use; directories 0700, files 0600)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    async def put(self, key: str, open_file: Opener, *, size: int, media_type: str) -> Stored:
        copy = _LocalCopy(self.root, self.root / key, open_file, size)
        try:
            while (stored := await asyncio.to_thread(copy.step, HOP_BYTES)) is None:
                pass
        except BaseException:
            await asyncio.shield(asyncio.to_thread(copy.abort))
            raise
        return stored

    async def aclose(self) -> None:
        return None


class _LocalCopy:
    """One file copied into a local store in steps, each one thread hop of at most
    HOP_BYTES: a large file does not hold one of the loop's threads for its whole copy,
    and a cancelled put stops at the next step."""

    def __init__(self, root: Path, target: Path, open_file: Opener, limit: int) -> None:
        self._root = root
        self._target = target
        self._open_file = open_file
        self._limit = limit
        self._lock = threading.Lock()  # abort waits for a step still running in its thread
        self._source: BinaryIO | None = None
        self._out: BinaryIO | None = None
        self._temporary = target.with_name(f".{target.name[:200]}.{uuid.uuid4().hex}.part")
        self._digest = hashlib.sha256()
        self._size = 0

    def step(self, budget: int) -> Stored | None:
        """Copies up to ``budget`` bytes; the stored file once the copy is complete."""
        with self._lock:
            try:
                source, out = self._open()
                while budget > 0:
                    data = _read(source, min(CHUNK_BYTES, budget))
                    if not data:
                        return self._finish(out)
                    self._size += len(data)
                    if self._size > self._limit:
                        raise SourceChanged(_grew(self._limit))
                    self._digest.update(data)
                    out.write(data)
                    budget -= len(data)
                return None
            except OSError as exc:  # the store's side: reads raise SourceChanged
                raise UploadError(f"cannot write to {self._root}: {exc.strerror or exc}") from None

    def _open(self) -> tuple[BinaryIO, BinaryIO]:
        """The file to store and the temporary file, opened on the first step."""
        if self._source is None:
            self._source = self._open_file()
        if self._out is None:
            self._target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._out = os.fdopen(fd, "wb")
        return self._source, self._out

    def _finish(self, out: BinaryIO) -> Stored:
        out.flush()
        os.fsync(out.fileno())
        out.close()
        self._temporary.replace(self._target)  # visible under its name only when whole
        self._close()
        return Stored(self._size, self._digest.hexdigest())

    def abort(self) -> None:
        with self._lock:
            self._close()
            with contextlib.suppress(OSError):
                self._temporary.unlink()

    def _close(self) -> None:
        for file in (self._out, self._source):
            if file is not None:
                with contextlib.suppress(OSError):
                    file.close()


class S3ArtifactStore:
    """Objects below ``s3://bucket/prefix`` (prefix "" or ending in "/")."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._endpoint_url = endpoint_url
        self._region = region
        self._config = AioConfig(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._part_bytes = max(part_bytes, 5 * 1024 * 1024)
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._creating: asyncio.Lock | None = None

    def describe(self) -> str:
        where = f" at {self._endpoint_url}" if self._endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    async def put(self, key: str, open_file: Opener, *, size: int, media_type: str) -> Stored:
        try:
            client = await self._get_client()
            source = await asyncio.to_thread(open_file)
            try:
                part_bytes = max(self._part_bytes, -(-size // MAX_PARTS))
                if size <= part_bytes:
                    return await self._put_object(client, key, source, size, media_type)
                return await self._put_multipart(client, key, source, size, part_bytes, media_type)
            finally:
                await asyncio.to_thread(source.close)
        except ClientError as exc:
            raise UploadError(f"cannot store {self._uri(key)}: {_client_error(exc)}") from None
        except (BotoCoreError, aiohttp.ClientError) as exc:
            raise UploadError(
                f"cannot store {self._uri(key)}: {exc or type(exc).__name__}"
            ) from None
        except TimeoutError:
            raise UploadError(f"cannot store {self._uri(key)}: timed out") from None

    async def aclose(self) -> None:
        self._client = None
        await self._stack.aclose()

    async def _get_client(self) -> Any:
        if self._client is None:
            if self._creating is None:
                self._creating = asyncio.Lock()
            async with self._creating:  # attempts finishing together make one client
                if self._client is None:
                    self._client = await self._stack.enter_async_context(
                        get_session().create_client(
                            "s3",
                            region_name=self._region,
                            endpoint_url=self._endpoint_url,
                            config=self._config,
                        )
                    )
        return self._client

    async def _put_object(
        self, client: Any, key: str, source: BinaryIO, size: int, media_type: str
    ) -> Stored:
        data = await asyncio.to_thread(_read_part, source, size + 1)
        if len(data) > size:
            raise SourceChanged(_grew(size))
        await client.put_object(
            Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=media_type
        )
        return Stored(len(data), hashlib.sha256(data).hexdigest())

    async def _put_multipart(
        self, client: Any, key: str, source: BinaryIO, size: int, part_bytes: int, media_type: str
    ) -> Stored:
        full_key = self.prefix + key
        created = await client.create_multipart_upload(
            Bucket=self.bucket, Key=full_key, ContentType=media_type
        )
        upload_id = created["UploadId"]
        try:
            digest = hashlib.sha256()
            total = 0
            parts: list[dict[str, Any]] = []
            while data := await asyncio.to_thread(_read_part, source, part_bytes):
                total += len(data)
                if total > size:
                    raise SourceChanged(_grew(size))
                digest.update(data)
                number = len(parts) + 1
                answer = await client.upload_part(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            await client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            await asyncio.shield(self._abort(client, full_key, upload_id))
            raise
        return Stored(total, digest.hexdigest())

    async def _abort(self, client: Any, key: str, upload_id: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError, aiohttp.ClientError, TimeoutError):
            await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"


def _read_part(source: BinaryIO, part_bytes: int) -> bytes:
    """Up to ``part_bytes`` bytes (fewer only at the end of the file)."""
    chunks: list[bytes] = []
    left = part_bytes
    while left > 0 and (data := _read(source, min(left, CHUNK_BYTES))):
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def _client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = error.get("Code") or "error"
    message = error.get("Message") or ""
    return f"{code}: {message}" if message else str(code)
