"""The database's last word on unknown queues: a run inserted into a queue that does
not exist (deleted after the server checked) is refused by a trigger
(migration 0010, `runs_queue_exists`); this turns that refusal into QueueNotFound."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from batchyard.server.domain.errors import QueueNotFound

TRIGGER = "runs_queue_exists"


@contextlib.asynccontextmanager
async def queue_checked(field: str = "") -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name != TRIGGER:
            raise
        raise QueueNotFound(exc.detail or "", field) from None
