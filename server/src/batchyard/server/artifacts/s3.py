"""An S3 bucket (or an S3-compatible store) as the artifact store, through aiobotocore.

Credentials come from the server's environment or profile (aiobotocore's default chain).
One client is made on first use and kept; every request is bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from batchyard.server.artifacts import CHUNK_BYTES, ArtifactMissing

PRESIGN_SECONDS = 3600
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3ArtifactStore:
    """Objects below `prefix` ("" or ending in "/") in `bucket`."""

    def __init__(
        self, bucket: str, prefix: str, *, endpoint_url: str | None, region: str | None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._endpoint_url = endpoint_url
        self._region = region
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        async with self._lock:
            if self._client is None:
                config = AioConfig(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3})
                self._client = await self._stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        region_name=self._region,
                        endpoint_url=self._endpoint_url,
                        config=config,
                    )
                )
            return self._client

    async def read(self, path: str) -> AsyncIterator[bytes]:
        s3 = await self._s3()
        try:
            response = await s3.get_object(Bucket=self.bucket, Key=self.prefix + path)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise ArtifactMissing(path) from None
            raise
        async with response["Body"] as body:
            while chunk := await body.read(CHUNK_BYTES):
                yield chunk

    async def presign(self, path: str) -> tuple[str, datetime] | None:
        s3 = await self._s3()
        expires = datetime.now(UTC) + timedelta(seconds=PRESIGN_SECONDS)
        url = await s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.prefix + path},
            ExpiresIn=PRESIGN_SECONDS,
        )
        return str(url), expires

    async def delete_prefix(self, prefix: str) -> None:
        s3 = await self._s3()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None
