"""Typed queries for retention: policies, and deleting finished runs in short batches.

Every deletion is a batch of at most BATCH runs in one statement that skips rows other
transactions hold, so leasing, submitting and log appends never wait long behind it.
Configurations no run refers to any more are collected after the runs, under row locks
that a concurrent submit reusing one of them also takes (runs.sql, insert_runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.retention import Policy

BATCH = 500
CONFIG_BATCH = 1000


@dataclass
class Deleted:
    """What one or more batches deleted."""

    runs: int = 0
    configs: int = 0
    with_results: list[UUID] = field(default_factory=list)
    """Runs that had result files (their files go from the artifact store next)."""


def _policy(row: asyncpg.Record) -> Policy:
    return Policy(
        keep_seconds=row["keep_seconds"],
        keep_succeeded=row["keep_succeeded"],
        keep_failed=row["keep_failed"],
        audit_keep_seconds=row["audit_keep_seconds"],
    )


async def policies(pool: asyncpg.Pool, workspace_id: UUID) -> tuple[Policy, dict[UUID, Policy]]:
    """The workspace's policy and the overrides of its definitions."""
    rows = await pool.fetch(q("retention_policies_of"), workspace_id)
    ws = next((_policy(r) for r in rows if r["definition_id"] is None), Policy())
    return ws, {r["definition_id"]: _policy(r) for r in rows if r["definition_id"] is not None}


async def put_policy(pool: asyncpg.Pool, ws: Workspace, definition: UUID | None, p: Policy) -> None:
    await pool.execute(
        *bind(
            "put_retention_policy",
            workspace_id=ws.id,
            definition_id=definition,
            keep_seconds=p.keep_seconds,
            keep_succeeded=p.keep_succeeded,
            keep_failed=p.keep_failed,
            audit_keep_seconds=p.audit_keep_seconds,
        )
    )


async def workspaces_with_policies(pool: asyncpg.Pool) -> list[UUID]:
    return [r["workspace_id"] for r in await pool.fetch(q("workspaces_with_policies"))]


async def definitions_of(pool: asyncpg.Pool, workspace_id: UUID) -> list[UUID]:
    return [r["id"] for r in await pool.fetch(q("definitions_of_workspace"), workspace_id)]


async def ended_before(
    pool: asyncpg.Pool,
    workspace_id: UUID,
    cutoff: datetime,
    definition: UUID | None,
    excluded: list[UUID],
) -> list[UUID]:
    rows = await pool.fetch(
        *bind(
            "runs_ended_before",
            workspace_id=workspace_id,
            cutoff=cutoff,
            definition_id=definition,
            excluded=excluded,
            limit=BATCH,
        )
    )
    return [r["id"] for r in rows]


async def beyond_latest(
    pool: asyncpg.Pool, definition: UUID, statuses: list[str], keep: int
) -> list[UUID]:
    rows = await pool.fetch(
        *bind(
            "runs_beyond_latest",
            definition_id=definition,
            statuses=statuses,
            keep=keep,
            limit=BATCH,
        )
    )
    return [r["id"] for r in rows]


@dataclass(frozen=True)
class RunSelection:
    """DeleteRuns' filter (None: any)."""

    statuses: tuple[str, ...]
    definition_uuid: UUID | None
    definition_name: str | None
    schedule: UUID | None
    ended_before: datetime


def _selection(ws: Workspace, s: RunSelection) -> dict[str, object]:
    return {
        "workspace_id": ws.id,
        "statuses": list(s.statuses),
        "definition_id": s.definition_uuid,
        "definition_name": s.definition_name,
        "schedule_id": s.schedule,
        "ended_before": s.ended_before,
    }


async def matching(pool: asyncpg.Pool, ws: Workspace, s: RunSelection) -> list[UUID]:
    rows = await pool.fetch(*bind("runs_matching", **_selection(ws, s), limit=BATCH))
    return [r["id"] for r in rows]


async def count_matching(pool: asyncpg.Pool, ws: Workspace, s: RunSelection) -> int:
    count: int = await pool.fetchval(*bind("count_runs_matching", **_selection(ws, s)))
    return count


async def delete_runs(pool: asyncpg.Pool, ids: list[UUID]) -> tuple[Deleted, list[bytes]]:
    """One batch: the finished runs among `ids` that no one holds; and the
    configurations they used."""
    row = await pool.fetchrow(q("delete_runs_batch"), ids)
    return Deleted(runs=len(row["runs"]), with_results=list(row["with_results"])), list(
        row["configs"]
    )


async def collect_configs(pool: asyncpg.Pool, ids: list[bytes]) -> int:
    """Delete those of `ids` that no run refers to (and no submit is reusing now)."""
    gone = 0
    for i in range(0, len(ids), CONFIG_BATCH):
        async with pool.acquire() as conn, conn.transaction():
            locked = [
                r["id"] for r in await conn.fetch(q("lock_configs"), ids[i : i + CONFIG_BATCH])
            ]
            if locked:  # a new statement: it sees every submit that held a lock before
                gone += len(await conn.fetch(q("delete_orphan_configs"), locked))
    return gone


async def orphan_configs(pool: asyncpg.Pool, after: bytes, limit: int) -> list[bytes]:
    return [r["id"] for r in await pool.fetch(q("orphan_config_candidates"), after, limit)]


async def delete_old_fires(pool: asyncpg.Pool, workspace_id: UUID, cutoff: datetime) -> int:
    rows = await pool.fetch(
        *bind("delete_old_fires", workspace_id=workspace_id, cutoff=cutoff, limit=BATCH)
    )
    return len(rows)


async def delete_old_audit(pool: asyncpg.Pool, workspace_id: UUID, cutoff: datetime) -> int:
    rows = await pool.fetch(
        *bind("delete_old_audit_events", workspace_id=workspace_id, cutoff=cutoff, limit=BATCH)
    )
    return len(rows)


async def definition_known(pool: asyncpg.Pool, ws: Workspace, ref: str) -> bool:
    known: bool = await pool.fetchval(q("definition_known"), ws.id, ref)
    return known
