"""An S3 object or prefix as an :class:`~batchyard.worker.sources.port.ObjectStore`: listed
and streamed object by object with the same client, limits and errors as S3 sources
(:mod:`~batchyard.worker.sources.s3`), for jobs that read S3 themselves (an INGEST job's
runner) instead of having it downloaded.

``s3://bucket/key`` is that one object (its size and ETag from ``HeadObject``);
``s3://bucket/prefix/`` every object below the prefix in key order, "folder" markers (keys
ending in ``/``) left out. Keys are used as they are (nothing is written to disk), so any
key S3 allows can be read.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from batchyard.v1 import job_pb2
from batchyard.worker.sources.port import SourceError, StoredObject
from batchyard.worker.sources.s3 import (
    CHUNK_BYTES,
    S3Limits,
    parse_s3_uri,
    s3_client,
    s3_errors,
)


class S3Objects:
    """``async with S3Objects(source) as store:`` then ``store.objects()``, ``store.read()``."""

    def __init__(
        self, source: job_pb2.S3Source, limits: S3Limits | None = None, chunk: int = CHUNK_BYTES
    ) -> None:
        self._source = source
        self._limits = limits or S3Limits()
        self._location = parse_s3_uri(source.uri)
        self._chunk = chunk
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def __aenter__(self) -> S3Objects:
        with s3_errors(f"cannot reach {self._location}"):
            self._client = await self._stack.enter_async_context(
                s3_client(self._source, self._limits)
            )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def objects(self) -> AsyncIterator[StoredObject]:
        location = self._location
        bucket = location.bucket
        if not location.is_prefix:
            with s3_errors(f"cannot read {location}"):
                head = await self._client.head_object(Bucket=bucket, Key=location.key)
            yield StoredObject(
                str(location), location.key, int(head.get("ContentLength") or 0), _etag(head)
            )
            return
        with s3_errors(f"cannot list {location}"):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=location.key):
                for item in page.get("Contents", ()):
                    key: str = item["Key"]
                    if key.endswith("/"):
                        continue
                    uri = f"s3://{bucket}/{key}"
                    yield StoredObject(uri, key, int(item.get("Size", 0)), _etag(item))

    async def read(self, item: StoredObject) -> AsyncIterator[bytes]:
        bucket = self._location.bucket
        with s3_errors(f"cannot read {item.uri}"):
            response = await self._client.get_object(Bucket=bucket, Key=item.key)
            etag = _etag(response)
            if item.etag and etag and etag != item.etag:
                response["Body"].close()
                raise SourceError(f"{item.uri} changed since it was listed (ETag {etag})")
            async with response["Body"] as body:
                async for chunk in body.iter_chunks(self._chunk):
                    yield chunk


def _etag(item: Any) -> str:
    return str(item.get("ETag") or "").strip('"')
