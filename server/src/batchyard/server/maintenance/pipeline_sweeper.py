"""The pipeline sweeper: what an ended run does to its dependents and its array is
applied in the transaction of the end; this re-checks on start (and now and then) so
that nothing can stay waiting for an end it missed — an ended run with waiting
dependents, an open array whose children all ended."""

from __future__ import annotations

import asyncpg
import structlog

from batchyard.server.db import pipelines
from batchyard.server.db.errors import is_transient
from batchyard.server.maintenance.clock import Clock, SystemClock

log = structlog.get_logger(__name__)
INTERVAL_SECONDS = 60.0


class PipelineSweeper:
    name = "pipeline-sweeper"

    def __init__(
        self,
        pool: asyncpg.Pool,
        interval_seconds: float = INTERVAL_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        self._pool = pool
        self._interval = interval_seconds
        self._clock = clock or SystemClock()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def run_once(self) -> int:
        settled = await pipelines.sweep(self._pool)
        if settled:
            log.warning("pipeline_sweep_settled", runs=settled)
        return settled

    async def run(self) -> None:
        """A pass at once, then every interval; a database that is away skips passes."""
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("pipeline_sweep_skipped", error=type(exc).__name__)
            await self._clock.sleep(self._interval)
