"""Typed queries for run logs: fenced batch appends and ordered reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from uuid import UUID

import asyncpg

from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.attempts import Fence
from batchyard.server.domain.runs import RunStatus


@dataclass(frozen=True)
class Appended:
    live: bool
    """The lease holds (False: nothing was stored)."""
    stored: bool
    """The batch extended the stored log."""
    current: int
    """The attempt's stored log end before the call."""


@dataclass(frozen=True)
class Chunk:
    attempt: int
    first_seq: int
    last_seq: int
    entries: bytes


async def append(pool: asyncpg.Pool, fence: Fence, first: int, last: int, data: bytes) -> Appended:
    row = await pool.fetchrow(
        *bind(
            "append_log_chunk",
            **asdict(fence),  # run, attempt, lease_id, workspace_id
            first_seq=first,
            last_seq=last,
            entries=data,
        )
    )
    return Appended(row["live"], row["stored"], row["current"] or 0)


async def chunks_after(
    pool: asyncpg.Pool, run: UUID, attempt: int, after: tuple[int, int], limit: int
) -> list[Chunk]:
    rows = await pool.fetch(
        *bind(
            "log_chunks_after",
            run=run,
            after_attempt=after[0],
            after_seq=after[1],
            attempt=attempt,
            limit=limit,
        )
    )
    return [Chunk(r["attempt"], r["first_seq"], r["last_seq"], bytes(r["entries"])) for r in rows]


async def log_end(pool: asyncpg.Pool, run: UUID, attempt: int) -> tuple[int, int]:
    """The position of the last stored entry ((0, 0) when nothing is stored)."""
    row = await pool.fetchrow(q("log_end"), run, attempt)
    return (row["attempt"], row["log_seq"]) if row else (0, 0)


async def run_status(pool: asyncpg.Pool, ws: Workspace, run: UUID) -> RunStatus | None:
    status = await pool.fetchval(q("run_state_for_logs"), ws.id, run)
    return RunStatus(status) if status else None
