"""Typed queries for the start of the worker protocol: lease and renew (how an attempt
ends: attempt_end.py).

Every write after the lease is fenced by (run, attempt, lease id) and by the database
clock: a worker whose lease is gone changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from uuid import UUID

import asyncpg
import structlog

from batchyard.server.db.job_codec import SecretBox, config_from_json
from batchyard.server.db.sql import bind
from batchyard.server.domain.attempts import Fence, Lease
from batchyard.server.domain.errors import LeaseLost, SecretsUnreadable
from batchyard.server.domain.jobs import Secrets

log = structlog.get_logger(__name__)

# How long a run whose secrets this server cannot open waits before it is leased again.
UNREADABLE_RETRY_SECONDS = 60.0


async def lease(
    pool: asyncpg.Pool,
    box: SecretBox,
    workspace: UUID,
    queues: list[str],
    limit: int,
    worker_id: str,
    ttl: float,
) -> list[Lease]:
    """Lease up to `limit` runs. A run whose secrets this server cannot open is not
    handed out: its lease is undone and it waits in the queue, saying why."""
    rows = await pool.fetch(
        *bind(
            "lease_runs",
            queues=queues,
            limit=limit,
            worker_id=worker_id,
            ttl_seconds=ttl,
            workspace_id=workspace,
        )
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
