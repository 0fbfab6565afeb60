"""Typed queries for the start of the worker protocol: lease and renew (how an attempt
ends: attempt_end.py).

Every write after the lease is fenced by (run, attempt, lease id) and by the database
clock: a worker whose lease is gone changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from batchyard.server.db import pipelines
from batchyard.server.db.job_codec import SecretBox, config_from_json
from batchyard.server.db.sql import bind
from batchyard.server.domain.attempts import Fence, Lease
from batchyard.server.domain.errors import LeaseLost, SecretsUnreadable
from batchyard.server.domain.jobs import Secrets

log = structlog.get_logger(__name__)

# How long a run whose secrets this server cannot open waits before it is leased again.
UNREADABLE_RETRY_SECONDS = 60.0
# How long this server trusts what it read about which queues have a concurrency limit.
LIMITS_CACHE_SECONDS = 2.0
MAX_CACHED_QUEUE_SETS = 10_000


class LimitedQueues:
    """Which queues have a concurrency limit, as this server last read it (a few
    seconds old at most). Only a lease naming one of them pays for the lock: one that a
    stale answer calls unlimited is skipped by the lease statement until the next read
    (never leased past its limit), one it calls limited costs a lock that finds none."""

    def __init__(self, ttl_seconds: float = LIMITS_CACHE_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._known: dict[tuple[UUID, tuple[str, ...]], tuple[float, frozenset[str]]] = {}
        self.names: set[str] = set()
        """Every queue name seen limited (a run ending there may make room)."""

    async def of(self, pool: asyncpg.Pool, workspace: UUID, queues: list[str]) -> frozenset[str]:
        key = (workspace, tuple(queues))
        now = time.monotonic()
        hit = self._known.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        rows = await pool.fetch(*bind("limited_queues", workspace_id=workspace, queues=queues))
        limited = frozenset(r["name"] for r in rows)
        if len(self._known) >= MAX_CACHED_QUEUE_SETS:
            self._known.clear()
        self._known[key] = (now + self._ttl, limited)
        self.names |= limited
        return limited

    def forget(self) -> None:
        self._known.clear()


async def lease(
    pool: asyncpg.Pool,
    box: SecretBox,
    workspace: UUID,
    queues: list[str],
    limit: int,
    worker_id: str,
    ttl: float,
    limited: frozenset[str] = frozenset(),
) -> list[Lease]:
    """Lease up to `limit` runs. A run whose secrets this server cannot open is not
    handed out: its lease is undone and it waits in the queue, saying why.

    One statement when none of `queues` is `limited`; otherwise a transaction that first
    locks the limited queues' rows, so that concurrent leases (any worker, any replica)
    count each other's runs and never start more than a queue's limit."""
    values = {
        "queues": queues,
        "limit": limit,
        "worker_id": worker_id,
        "ttl_seconds": ttl,
        "workspace_id": workspace,
    }
    if not limited:
        rows = await pool.fetch(*bind("lease_runs", **values, locked=[]))
    else:
        async with pool.acquire() as conn, conn.transaction():
            locked = await conn.fetch(
                *bind("lock_limited_queues", workspace_id=workspace, queues=sorted(limited))
            )
            rows = await conn.fetch(
                *bind("lease_runs", **values, locked=[r["name"] for r in locked])
            )
    out, unreadable = [], []
    opened: dict[bytes, Secrets] = {}  # runs of one configuration share its sealed value
    for r in rows:
        sealed = r["sealed_secrets"]
        try:
            secrets = opened.get(sealed) or opened.setdefault(sealed, box.open(sealed))
        except SecretsUnreadable as exc:
            unreadable.append((r, exc.message))
            continue
        out.append(_lease_of(r, secrets))
    if unreadable:
        await _unlease(pool, unreadable)
    return await _with_array_places(pool, out)


async def _with_array_places(pool: asyncpg.Pool, leased: list[Lease]) -> list[Lease]:
    """Children of array runs get BATCHYARD_ARRAY_INDEX and BATCHYARD_ARRAY_SIZE (their
    configuration is shared by the whole array, so the index is added here)."""
    places = await pipelines.array_places(pool, [x.run for x in leased]) if leased else {}
    if not places:
        return leased
    out = []
    for x in leased:
        if x.run in places:
            index, size = places[x.run]
            env = {
                **x.config.env,
                "BATCHYARD_ARRAY_INDEX": str(index),
                "BATCHYARD_ARRAY_SIZE": str(size),
            }
            x = replace(x, config=replace(x.config, env=env))
        out.append(x)
    return out


def _lease_of(row: asyncpg.Record, secrets: Secrets) -> Lease:
    return Lease(
        run=row["id"],
        attempt=row["attempt"],
        lease_id=row["lease_id"],
        expires=row["lease_expires_at"],
        config=config_from_json(row["config"]),
        secrets=secrets,
        payload=bytes(row["payload"]),
        definition_name=row["definition_name"],
        workspace=row["workspace"],
    )


async def _unlease(pool: asyncpg.Pool, unreadable: list[tuple[asyncpg.Record, str]]) -> None:
    for row, why in unreadable:
        log.error("run_secrets_unreadable", run=str(row["id"]), error=why)
    undone = [
        (
            r["id"],
            r["attempt"],
            r["lease_id"],
            f"waiting for a server that can open its secrets: {why}",
        )
        for r, why in unreadable
    ]
    await _undo(pool, undone, UNREADABLE_RETRY_SECONDS)


async def undo(pool: asyncpg.Pool, undone: list[Lease]) -> None:
    """Hand back leases no worker received (the caller went away before the answer):
    each run is pending again at once, as if never leased — no attempt, no retry spent."""
    await _undo(pool, [(x.run, x.attempt, x.lease_id, "") for x in undone], 0.0)


async def _undo(
    pool: asyncpg.Pool, undone: list[tuple[UUID, int, UUID, str]], delay_seconds: float
) -> None:
    await pool.execute(
        *bind(
            "undo_leases",
            runs=[run for run, _, _, _ in undone],
            attempts=[attempt for _, attempt, _, _ in undone],
            lease_ids=[lease_id for _, _, lease_id, _ in undone],
            messages=[message for _, _, _, message in undone],
            delay_seconds=delay_seconds,
        )
    )


async def renew(
    pool: asyncpg.Pool, fence: Fence, progress: int | None, ttl: float
) -> tuple[datetime, bool]:
    """Extend the lease; returns its new expiry and whether cancel was requested."""
    row = await pool.fetchrow(
        *bind(
            "renew_lease",
            **asdict(fence),  # run, attempt, lease_id, workspace_id
            progress=progress,
            ttl_seconds=ttl,
            coalesce_seconds=ttl / 6,
        )
    )
    if row is None:
        raise LeaseLost(f"lease on run {fence.run} attempt {fence.attempt} is gone")
    return row["lease_expires_at"], row["cancel_requested"]


async def set_tasks(pool: asyncpg.Pool, fence: Fence, tasks: dict[str, Any]) -> bool:
    """Store the run's task summary (the latest wins); False when the lease is gone."""
    row = await pool.fetchrow(*bind("set_tasks", **asdict(fence), tasks=tasks))
    return row is not None
