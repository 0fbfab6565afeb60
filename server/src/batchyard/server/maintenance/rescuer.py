"""The lease rescuer: runs whose worker stopped heartbeating get a new attempt, or fail.

Expiry is judged by the database clock, and each pass locks the expired runs with SKIP
LOCKED, so any number of server replicas can run a rescuer at once.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from batchyard.server.db import leases
from batchyard.server.db.errors import is_transient
from batchyard.server.db.wakeups import Wakeups, run_key
from batchyard.server.domain.runs import RunStatus

log = structlog.get_logger(__name__)
BATCH = 100


class Rescuer:
    def __init__(self, pool: asyncpg.Pool, wakeups: Wakeups, interval_seconds: float) -> None:
        self._pool = pool
        self._wakeups = wakeups
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="lease-rescuer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def rescue_once(self) -> list[leases.Rescued]:
        """One pass: every expired lease, in batches."""
        rescued: list[leases.Rescued] = []
        while True:
            batch = await leases.rescue_expired(self._pool, BATCH)
            rescued += batch
            for r in batch:
                log.warning(
                    "lease_expired",
                    run=str(r.run),
                    attempt=r.attempt,
                    worker_id=r.worker_id,
                    now=r.status.value,
                )
            woken = {r.queue for r in batch if r.status == RunStatus.PENDING}
            woken |= {run_key(r.run) for r in batch}
            if woken:
                self._wakeups.poke(woken)
            if len(batch) < BATCH:
                return rescued

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.rescue_once()
            except Exception as exc:  # boundary: one bad pass must not end the loop
                if is_transient(exc):
                    log.warning("rescue_skipped", error=type(exc).__name__)
                else:
                    log.error("rescue_failed", exc_info=exc)
