"""The lease rescuer: runs whose worker stopped heartbeating get a new attempt, or fail.

Expiry is judged by the database clock (or, in tests, by the clock's `now`), and each
pass locks the expired runs with SKIP LOCKED, so any number of server replicas can run a
rescuer at once. Each pass first ticks the service clock (`service_clock`): after an
outage of the service, leases are extended by it before any is judged. The workers whose
leases a pass expires are fenced (no new work until they prove alive). `run_once` is one
pass; `run` is the loop the supervisor watches.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import structlog

from batchyard.server.db import attempt_end
from batchyard.server.db.errors import is_transient
from batchyard.server.db.wakeups import Wakeups
from batchyard.server.domain.attempts import Rescued
from batchyard.server.maintenance.clock import Clock, SystemClock
from batchyard.server.maintenance.service_clock import ServiceClock

log = structlog.get_logger(__name__)
BATCH = 100


class Rescuer:
    name = "lease-rescuer"

    def __init__(
        self,
        pool: asyncpg.Pool,
        wakeups: Wakeups,
        interval_seconds: float,
        clock: Clock | None = None,
        *,
        ttl_seconds: float = 30.0,
        max_outage_seconds: float = 300.0,
    ) -> None:
        self._pool = pool
        self.service_clock = ServiceClock(
            pool,
            tick_seconds=interval_seconds,
            ttl_seconds=ttl_seconds,
            max_outage_seconds=max_outage_seconds,
        )
        self._wakeups = wakeups
        self._interval = interval_seconds
        self._clock = clock or SystemClock()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def run_once(self, now: datetime | None = None) -> list[Rescued]:
        """One pass: every lease expired at `now` (None: by the database clock), in
        batches, after the service clock's tick made up for any outage."""
        await self.service_clock.tick(now)
        rescued: list[Rescued] = []
        while True:
            batch = await attempt_end.rescue_expired(self._pool, BATCH, now)
            rescued += batch
            for r in batch:
                log.warning(
                    "lease_expired",
                    run=str(r.run),
                    attempt=r.attempt,
                    worker_id=r.worker_id,
                    now=r.status.value,
                )
                self._wakeups.poke_ended(r.run, r.status, r.queue)
            if len(batch) < BATCH:
                return rescued

    async def run(self) -> None:
        """A pass at start (a restarted server makes up for its downtime before any call
        is judged late) and every interval; a database that is away skips passes,
        anything else is a crash for the supervisor to report."""
        first = True
        while True:
            if not first:
                await self._clock.sleep(self._interval)
            first = False
            try:
                await self.run_once(self._clock.now())
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("rescue_skipped", error=type(exc).__name__)
