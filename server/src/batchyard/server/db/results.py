"""Typed queries for result assets (the listing; the bytes live in the artifact store)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import ResultNotFound, RunNotFound
from batchyard.server.domain.results import Result


async def insert(conn: asyncpg.Connection, run: UUID, attempt: int, results: list[Result]) -> None:
    """Store an attempt's results (in the caller's transaction; repeats add nothing)."""
    await conn.execute(
        *bind(
            "insert_results",
            run=run,
            attempt=attempt,
            names=[r.name for r in results],
            sizes=[r.size_bytes for r in results],
            sha256s=[r.sha256 for r in results],
            media_types=[r.media_type for r in results],
        )
    )


def _result(row: asyncpg.Record) -> Result:
    return Result(
        attempt=row["attempt"],
        name=row["name"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        media_type=row["media_type"],
        created_at=row["created_at"],
    )


async def list_page(
    pool: asyncpg.Pool, ws: Workspace, run: UUID, after: str, limit: int
) -> list[Result]:
    """Up to `limit` results of the run's current attempt named after `after`."""
    rows = await pool.fetch(q("list_results"), ws.id, run, after, limit)
    if not rows:
        raise RunNotFound(str(run))
    return [_result(row) for row in rows if row["name"] is not None]


async def get(pool: asyncpg.Pool, ws: Workspace, run: UUID, name: str) -> Result:
    """One result of the run's current attempt."""
    row = await pool.fetchrow(q("get_result"), ws.id, run, name)
    if row is None:
        raise RunNotFound(str(run))
    if row["name"] is None:
        raise ResultNotFound(str(run), name)
    return _result(row)
