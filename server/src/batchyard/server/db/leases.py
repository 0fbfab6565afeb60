"""Typed queries for the start of the worker protocol: lease and renew (how an attempt
ends: attempt_end.py).

Every write after the lease is fenced by (run, attempt, lease id) and by the database
clock: a worker whose lease is gone changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import structlog

from batchyard.server.db.job_codec import SecretBox, config_from_json
from batchyard.server.db.sql import q
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
    rows = await pool.fetch(q("lease_runs"), queues, limit, worker_id, ttl, workspace)
    out, unreadable = [], []
    opened: dict[bytes, Secrets] = {}  # runs of one configuration share its sealed value
    for r in rows:
        sealed = r["sealed_secrets"]
        try:
            secrets = opened.get(sealed) or opened.setdefault(sealed, box.open(sealed))
        except SecretsUnreadable as exc:
            unreadable.append((r, exc.message))
            continue
        out.append(
            Lease(
                run=r["id"],
                attempt=r["attempt"],
                lease_id=r["lease_id"],
                expires=r["lease_expires_at"],
                config=config_from_json(r["config"]),
                secrets=secrets,
                payload=bytes(r["payload"]),
                definition_name=r["definition_name"],
                workspace=r["workspace"],
            )
        )
    if unreadable:
        await _unlease(pool, unreadable)
    return out


async def _unlease(pool: asyncpg.Pool, unreadable: list[tuple[asyncpg.Record, str]]) -> None:
    for row, why in unreadable:
        log.error("run_secrets_unreadable", run=str(row["id"]), error=why)
    await pool.execute(
        q("unlease_unreadable"),
        [r["id"] for r, _ in unreadable],
        [r["attempt"] for r, _ in unreadable],
        [r["lease_id"] for r, _ in unreadable],
        [f"waiting for a server that can open its secrets: {why}" for _, why in unreadable],
        UNREADABLE_RETRY_SECONDS,
    )


async def renew(
    pool: asyncpg.Pool, fence: Fence, progress: int | None, ttl: float
) -> tuple[datetime, bool]:
    """Extend the lease; returns its new expiry and whether cancel was requested."""
    row = await pool.fetchrow(
        q("renew_lease"),
        fence.run,
        fence.attempt,
        fence.lease_id,
        progress,
        ttl,
        fence.workspace_id,
    )
    if row is None:
        raise LeaseLost(f"lease on run {fence.run} attempt {fence.attempt} is gone")
    return row["lease_expires_at"], row["cancel_requested"]
