"""The service clock: one row in the database that every replica's maintenance ticks
before each rescue pass (the rule is `domain.outages`).

A tick that finds no replica ticked for longer than a few intervals — the database was
away, or every server was down — extends every lease that was live at the last tick by
that gap, in the same transaction, so no rescue pass (of any replica: they tick one at a
time, the row is locked) expires a lease its worker could not have renewed.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import structlog

from batchyard.server.db.sql import bind, q
from batchyard.server.domain.outages import Extension, extension

log = structlog.get_logger(__name__)


class ServiceClock:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        tick_seconds: float,
        ttl_seconds: float,
        max_outage_seconds: float,
    ) -> None:
        self._pool = pool
        self._tick = tick_seconds
        self._ttl = ttl_seconds
        self._max_outage = max_outage_seconds

    async def tick(self, now: datetime | None = None) -> Extension | None:
        """One tick at `now` (None: the database's clock); the extension it gave, if the
        service had been away."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(q("lock_service_clock"), now)
            at = row["now"]
            ext = extension(
                row["last_tick_at"],
                at,
                tick_seconds=self._tick,
                ttl_seconds=self._ttl,
                max_outage_seconds=self._max_outage,
            )
            extended = None
            if ext is not None:
                extended = await conn.execute(
                    *bind(
                        "extend_leases_after_outage",
                        extend_seconds=ext.extend_seconds,
                        floor=ext.floor,
                        last_tick=row["last_tick_at"],
                    )
                )
            gap = ext.gap_seconds if ext is not None else None
            await conn.execute(*bind("set_service_clock", now=at, gap_seconds=gap))
        if ext is not None:
            log.warning(
                "service_outage_made_up",
                gap_seconds=round(ext.gap_seconds, 1),
                extended_by_seconds=round(ext.extend_seconds, 1),
                leases=int(str(extended).split()[-1]) if extended else 0,
            )
        return ext
