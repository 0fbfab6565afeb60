"""Typed queries for queues: create, read with their numbers, update, delete; which
queues exist; and what holds a pending run (domain/waiting.py explains it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import asyncpg

from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import QueueExists, QueueNotFound, WrongState
from batchyard.server.domain.queues import Queue, QueueDraft, QueueState, QueueStats, deletable
from batchyard.server.domain.runs import Run, RunStatus
from batchyard.server.domain.waiting import POSITION_CAP, QueueFacts, explain

KNOWN_SECONDS = 5.0
MAX_KNOWN = 100_000


def _draft(row: asyncpg.Record) -> QueueDraft:
    return QueueDraft(
        name=row["name"],
        description=row["description"],
        priority=row["priority"],
        state=QueueState(row["state"]),
        concurrency_limit=row["concurrency_limit"],
    )


def _queue(row: asyncpg.Record) -> Queue:
    oldest = row["oldest_pending"]
    stats = QueueStats(
        pending=row["pending"],
        running=row["running"],
        oldest_pending_submitted=oldest,
        age_seconds=max(0.0, (row["now"] - oldest).total_seconds()) if oldest else None,
    )
    return Queue(row["workspace"], _draft(row), row["created_at"], row["updated_at"], stats)


def _values(ws: Workspace, draft: QueueDraft) -> dict[str, object]:
    state = draft.state or QueueState.ENABLED
    return {
        "workspace_id": ws.id,
        "name": draft.name,
        "description": draft.description,
        "priority": draft.priority,
        "state": state.value,
        "concurrency_limit": draft.concurrency_limit,
    }


async def create(pool: asyncpg.Pool, ws: Workspace, draft: QueueDraft) -> Queue:
    try:
        await pool.fetchrow(*bind("create_queue", **_values(ws, draft)))
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "queues_pkey":
            raise QueueExists(draft.name) from None
        raise
    return await get(pool, ws, draft.name)


async def get(pool: asyncpg.Pool | asyncpg.Connection, ws: Workspace, name: str) -> Queue:
    rows = await pool.fetch(
        *bind("get_queues", workspace_id=ws.id, names=[name], after_name=None, limit=1)
    )
    if not rows:
        raise QueueNotFound(name)
    return _queue(rows[0])


async def list_page(
    pool: asyncpg.Pool, ws: Workspace, after: str | None, limit: int
) -> list[Queue]:
    rows = await pool.fetch(
        *bind("get_queues", workspace_id=ws.id, names=None, after_name=after, limit=limit)
    )
    return [_queue(r) for r in rows]


async def update(
    pool: asyncpg.Pool,
    ws: Workspace,
    name: str,
    change: Callable[[QueueDraft], QueueDraft],
) -> tuple[QueueDraft, QueueDraft]:
    """Apply `change` to the queue under its row lock; returns (before, after)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("lock_queue"), ws.id, name)
        if row is None:
            raise QueueNotFound(name)
        before = _draft(row)
        after = replace(change(before), name=name)
        await conn.execute(*bind("update_queue", **_values(ws, after)))
    return before, after


async def delete(pool: asyncpg.Pool, ws: Workspace, name: str) -> None:
    """Refused for the default queue, a queue with unfinished runs or one a definition
    names. The queue's row is locked first: a submission naming it waits (and then finds
    it gone), and the counts below see every run committed before."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchrow(q("lock_queue"), ws.id, name) is None:
            raise QueueNotFound(name)
        why = deletable(name)
        if why:
            raise WrongState(why)
        holders = await conn.fetchrow(q("queue_holders"), ws.id, name)
        if holders["unfinished"]:
            raise WrongState(
                f"queue {name!r} holds {holders['unfinished']} unfinished runs; cancel them "
                "or let them finish first"
            )
        if holders["definitions"]:
            raise WrongState(
                f"queue {name!r} is named by {holders['definitions']} definitions; move them "
                "to another queue first"
            )
        await conn.execute(q("delete_queue"), ws.id, name)


async def missing(pool: asyncpg.Pool, ws: Workspace, names: Sequence[str]) -> set[str]:
    """Which of `names` are not queues of the workspace."""
    wanted = sorted(set(names))
    rows = await pool.fetch(q("existing_queues"), ws.id, wanted)
    return set(wanted) - {r["name"] for r in rows}


async def explain_waiting(pool: asyncpg.Pool, ws: Workspace, runs: list[Run]) -> list[Run]:
    """The runs, each PENDING one with the reason and message that say what holds it now
    (one query for all of them)."""
    pending = [r.uuid for r in runs if r.status == RunStatus.PENDING]
    if not pending:
        return runs
    rows = await pool.fetch(
        *bind("waiting_facts", workspace_id=ws.id, runs=pending, cap=POSITION_CAP)
    )
    facts = {
        r["id"]: (
            QueueFacts(
                queue=r["name"],
                paused=r["state"] == QueueState.PAUSED,
                concurrency_limit=r["concurrency_limit"],
                running=r["running"],
                ahead=r["ahead"],
            ),
            r["now"],
        )
        for r in rows
    }
    out = []
    for run in runs:
        if run.uuid not in facts:
            out.append(run)
            continue
        fact, now = facts[run.uuid]
        why = explain(run.reason, run.message, run.next_attempt_time, now, fact)
        shown = replace(run, reason=why.reason, message=why.message, queue_position=why.position)
        out.append(shown)
    return out


class KnownQueues:
    """Queues this server saw exist, for a few seconds: a submission naming one needs no
    query. A name not known is looked up every time (a new queue is usable at once); a
    queue deleted meanwhile is caught by the database (db/queue_guard.py)."""

    def __init__(self, ttl_seconds: float = KNOWN_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._until: dict[tuple[object, str], float] = {}

    async def require(self, pool: asyncpg.Pool, ws: Workspace, named: dict[str, str]) -> None:
        """QueueNotFound naming the field (values of `named`) of the first unknown queue."""
        now = time.monotonic()
        unsure = [n for n in named if self._until.get((ws.id, n), 0.0) <= now]
        if not unsure:
            return
        absent = await missing(pool, ws, unsure)
        if len(self._until) >= MAX_KNOWN:
            self._until.clear()
        for name in unsure:
            if name not in absent:
                self._until[(ws.id, name)] = now + self._ttl
        if absent:
            first = min(absent, key=lambda n: named[n])
            raise QueueNotFound(first, named[first])
