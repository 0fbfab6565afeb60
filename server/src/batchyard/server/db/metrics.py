"""Typed queries behind /metrics: what must be right across replicas is read here."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from batchyard.server.db.sql import bind, q


@dataclass(frozen=True)
class QueueGauge:
    queue: str
    pending: int
    oldest_pending_seconds: float
    running: int


@dataclass(frozen=True)
class Outcome:
    queue: str
    status: str
    reason: str
    runs: int


@dataclass(frozen=True)
class Snapshot:
    queues: tuple[QueueGauge, ...]
    outcomes: tuple[Outcome, ...]
    log_chunks: int
    log_bytes: int


async def snapshot(pool: asyncpg.Pool) -> Snapshot:
    async with pool.acquire() as conn:
        gauges = await conn.fetch(q("queue_gauges"))
        outcomes = await conn.fetch(q("runs_by_outcome"))
        logs = await conn.fetchrow(q("log_storage"))
    return Snapshot(
        tuple(QueueGauge(r["queue"], r["pending"], r["oldest"], r["running"]) for r in gauges),
        tuple(Outcome(r["queue"], r["status"], r["reason"], r["runs"]) for r in outcomes),
        logs["chunks"] if logs else 0,
        logs["bytes"] if logs else 0,
    )


async def lease_latencies(pool: asyncpg.Pool, run_ids: list[UUID]) -> list[tuple[str, float]]:
    rows = await pool.fetch(*bind("lease_latencies", ids=run_ids))
    return [(r["queue"], r["seconds"]) for r in rows]
