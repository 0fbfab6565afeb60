"""The artifact store the workers put result files in, as the server reads it.

Both tiers agree on one layout: result NAME of attempt A of run R is ``runs/R/A/NAME`` below
a local directory or below an S3 prefix (:func:`object_path`). The server only reads
(download streams, presigned URLs) and deletes a deleted run's files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol
from uuid import UUID

CHUNK_BYTES = 512 * 1024
"""Bytes per DownloadRunResult message."""


class ArtifactMissing(Exception):
    """The listing names a file the artifact store does not hold."""


def object_path(run: UUID, attempt: int, name: str) -> str:
    """The file's path below the store's root: ``runs/<run>/<attempt>/<name>``."""
    return f"runs/{run}/{attempt}/{name}"


def run_prefix(run: UUID) -> str:
    """Every file of every attempt of the run is below this path."""
    return f"runs/{run}/"


class ArtifactStore(Protocol):
    """What the server does with the artifact store."""

    def read(self, path: str) -> AsyncIterator[bytes]:
        """The file's bytes in chunks of at most CHUNK_BYTES; ArtifactMissing if absent
        (raised before the first chunk)."""
        ...

    async def presign(self, path: str) -> tuple[str, datetime] | None:
        """A URL that downloads the file without a token, and when it expires; None when
        the store cannot make one (a local directory)."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Removes every file below `prefix` (a missing one is fine)."""
        ...

    async def aclose(self) -> None: ...
