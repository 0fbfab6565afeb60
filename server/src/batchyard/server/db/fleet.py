"""Typed queries for the fleet of workers: who is alive, who is fenced, and the listing.

A worker is seen on each LeaseRuns call and heartbeat (coalesced: at most a write every
few seconds per worker). The rescuer fences the workers whose leases it expires
(attempt_end.rescue_expired); a fenced worker's open long-polls answer empty until a call
made after the fence proves it alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from batchyard.server.db.sql import bind


@dataclass(frozen=True)
class Arrival:
    """What a worker says of itself on a LeaseRuns call."""

    worker_id: str
    host: str
    version: str
    queues: list[str]
    slots: int
    slots_busy: int
    started_at: datetime | None


async def arrived(
    pool: asyncpg.Pool, workspace: UUID, arrival: Arrival, coalesce_seconds: float
) -> datetime:
    """Record the worker's call (lifting a fence set before it); the call's time."""
    at: datetime = await pool.fetchval(
        *bind(
            "worker_arrived",
            workspace_id=workspace,
            worker_id=arrival.worker_id,
            host=arrival.host,
            version=arrival.version,
            queues=arrival.queues,
            slots=arrival.slots,
            slots_busy=arrival.slots_busy,
            started_at=arrival.started_at,
            coalesce_seconds=coalesce_seconds,
        )
    )
    return at


async def fenced_since(
    pool: asyncpg.Pool,
    workspace: UUID,
    worker_id: str,
    call_at: datetime,
    coalesce_seconds: float,
) -> bool:
    """True when the rescuer fenced the worker after its call began (the call must then
    answer empty); also marks the worker seen (coalesced)."""
    fenced = await pool.fetchval(
        *bind(
            "worker_waiting",
            workspace_id=workspace,
            worker_id=worker_id,
            call_at=call_at,
            coalesce_seconds=coalesce_seconds,
        )
    )
    return bool(fenced)
