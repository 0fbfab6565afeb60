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


@dataclass(frozen=True)
class RunningAttempt:
    run: UUID
    attempt: int
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class WorkerRecord:
    """A worker as the server last saw it."""

    worker_id: str
    host: str
    version: str
    queues: list[str]
    slots: int
    slots_busy: int
    started_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    fenced: bool
    alive: bool
    running: list[RunningAttempt]


async def list_live(
    pool: asyncpg.Pool, workspace: UUID, ttl_seconds: float, after: str | None, limit: int
) -> list[WorkerRecord]:
    """Live workers (seen within the TTL) by id, after `after`."""
    rows = await pool.fetch(
        *bind(
            "list_workers",
            workspace_id=workspace,
            ttl_seconds=ttl_seconds,
            after=after,
            limit=limit,
        )
    )
    return await _with_running(pool, workspace, rows)


async def get(
    pool: asyncpg.Pool, workspace: UUID, worker_id: str, ttl_seconds: float
) -> WorkerRecord | None:
    row = await pool.fetchrow(
        *bind("get_worker", workspace_id=workspace, worker_id=worker_id, ttl_seconds=ttl_seconds)
    )
    return (await _with_running(pool, workspace, [row]))[0] if row is not None else None


async def _with_running(
    pool: asyncpg.Pool, workspace: UUID, rows: list[asyncpg.Record]
) -> list[WorkerRecord]:
    running: dict[str, list[RunningAttempt]] = {r["worker_id"]: [] for r in rows}
    if rows:
        for a in await pool.fetch(
            *bind("workers_running", workspace_id=workspace, worker_ids=list(running))
        ):
            running[a["worker_id"]].append(
                RunningAttempt(a["id"], a["attempt"], a["lease_expires_at"])
            )
    return [
        WorkerRecord(
            worker_id=r["worker_id"],
            host=r["host"],
            version=r["version"],
            queues=list(r["queues"]),
            slots=r["slots"],
            slots_busy=r["slots_busy"],
            started_at=r["started_at"],
            first_seen_at=r["first_seen_at"],
            last_seen_at=r["last_seen_at"],
            fenced=r["fenced"],
            alive=r["alive"],
            running=running[r["worker_id"]],
        )
        for r in rows
    ]
