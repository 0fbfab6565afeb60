"""A local directory as the artifact store (the default, and `batchyard dev`'s)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from batchyard.server.artifacts import CHUNK_BYTES, ArtifactMissing


class LocalArtifactStore:
    """Files below `root`; paths are the layout's, already validated (no `..`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, path: str) -> Path:
        file = self.root / path
        if not file.resolve().is_relative_to(self.root.resolve()):
            raise ArtifactMissing(path)  # a symlink planted in the store: never followed out
        return file

    async def read(self, path: str) -> AsyncIterator[bytes]:
        file = self._file(path)
        try:
            handle = await asyncio.to_thread(open, file, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactMissing(path) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def presign(self, path: str) -> tuple[str, datetime] | None:
        return None

    async def delete_prefix(self, prefix: str) -> None:
        target = self.root / prefix
        if target.resolve().is_relative_to(self.root.resolve()):
            await asyncio.to_thread(shutil.rmtree, target, True)

    async def aclose(self) -> None:
        return None
