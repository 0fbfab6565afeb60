"""Coalesced reads of current definitions for SubmitRun.

Concurrent submits of the same definitions share one query, yet each still sees the
definition as it was when its call arrived: a call never joins a read that was already
in flight (that read may have started before an update the caller has seen complete);
it waits for the next read, which starts after it arrived. No timer: an idle server reads
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import asyncpg

from batchyard.server.db import definitions as store
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.definitions import Definition
from batchyard.server.domain.errors import DefinitionNotFound

Waiter = tuple[str, "asyncio.Future[Definition]"]


class DefinitionReader:
    """A service (lifecycle.py) with no loop of its own."""

    name = "definition-reader"

    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self._pool = pool
        self._box = box
        self._queue: dict[Workspace, list[Waiter]] = defaultdict(list)
        self._reader: asyncio.Task[None] | None = None

    async def current(self, ws: Workspace, ref: str) -> Definition:
        """The current version of the definition `ref` (name or uuid) in `ws`."""
        future: asyncio.Future[Definition] = asyncio.get_running_loop().create_future()
        self._queue[ws].append((ref, future))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="definition-reader")
        return await future

    async def _read(self) -> None:
        while self._queue:
            taken, self._queue = self._queue, defaultdict(list)
            await asyncio.gather(
                *(self._read_workspace(ws, waiters) for ws, waiters in taken.items())
            )

    async def _read_workspace(self, ws: Workspace, waiters: list[Waiter]) -> None:
        try:
            found = await store.get_current_many(
                self._pool, self._box, ws, sorted({ref for ref, _ in waiters})
            )
        except Exception as exc:  # boundary: every waiting caller gets the failure
            for _, future in waiters:
                if not future.done():
                    future.set_exception(exc)
            return
        for ref, future in waiters:
            if future.done():
                continue
            result = found.get(ref)
            if isinstance(result, Definition):
                future.set_result(result)
            else:
                future.set_exception(result or DefinitionNotFound(ref))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """Waits for the statement in flight (its callers get their answers)."""
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
