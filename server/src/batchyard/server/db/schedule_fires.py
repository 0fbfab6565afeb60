"""Fires: what a schedule's fire time does, each in one short transaction.

Exactly once across replicas: the schedule row is locked (SKIP LOCKED: another replica
busy with it is skipped, never waited for), and every fire time acted on is a row of
schedule_fires keyed by (schedule, fire time), written in the same transaction as its
run and the schedule's advanced cursor. A crash before the commit leaves nothing (the
next pass fires that time again); after it, the key refuses a second run for that time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from batchyard.server.db import runs as run_store
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.schedules import schedule_from_row
from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import DomainError, SecretsUnreadable
from batchyard.server.domain.runs import NewRun, Run
from batchyard.server.domain.schedules import (
    FireOutcome,
    Schedule,
    ScheduleNotFound,
    decide_overlap,
    plan_fires,
)

Prepare = Callable[[Schedule], Awaitable[NewRun]]
"""Builds the run a schedule submits now (the definition's current version plus the
schedule's overrides and payload), or raises a DomainError saying why it cannot."""


@dataclass
class Fired:
    """What acting on one schedule did."""

    schedule: UUID
    outcomes: list[tuple[datetime, FireOutcome, UUID | None]] = field(default_factory=list)
    queues: set[str] = field(default_factory=set)
    """Queues that got a run (their workers are woken)."""
    touched: list[UUID] = field(default_factory=list)
    """Runs cancelled or asked to stop (CANCEL_OTHER; their watchers are woken)."""


def _readable(row: asyncpg.Record, box: SecretBox, prepare: Prepare) -> tuple[Schedule, Prepare]:
    """The schedule, and how to prepare its run: a schedule whose secrets this server
    cannot open fails its fires with the reason (rather than stopping the scheduler)."""
    try:
        return schedule_from_row(row, box), prepare
    except SecretsUnreadable as exc:
        reason = exc

        async def refuse(_: Schedule) -> NewRun:
            raise reason

        return schedule_from_row(row, None), refuse


def _workspace(s: Schedule) -> Workspace:
    return Workspace(s.workspace_id, s.workspace)


async def fire_due(
    pool: asyncpg.Pool, box: SecretBox, schedule_id: UUID, now: datetime, prepare: Prepare
) -> Fired | None:
    """Act on every fire time of the schedule that is due at `now`; None when another
    replica holds it or nothing is due."""
    fired = Fired(schedule_id)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("lock_due_schedule"), schedule_id)
        if row is None:
            return None
        s, prepare = _readable(row, box, prepare)
        if s.paused or s.next_fire_at is None or s.next_fire_at > now:
            return None
        plan = plan_fires(s.timetable, s.next_fire_at, now, s.catchup_seconds)
        error = s.last_error
        for fire_time in plan.due:
            error = await _fire_one(conn, box, s, fire_time, now, prepare, fired, error)
        await conn.execute(q("advance_schedule"), s.uuid, plan.cursor, plan.missed, error)
    return fired


async def _fire_one(
    conn: asyncpg.Connection,
    box: SecretBox,
    s: Schedule,
    fire_time: datetime,
    now: datetime,
    prepare: Prepare,
    fired: Fired,
    error: str,
) -> str:
    """One fire time under the schedule's overlap policy; returns the schedule's error."""
    state = await conn.fetchrow(q("overlap_state"), s.uuid)
    unfinished, buffered = list(state["unfinished"]), state["buffered"]
    decision = decide_overlap(s.overlap, unfinished, s.max_concurrent_runs, buffered)
    if not decision.submit:
        if await _record(conn, s.uuid, fire_time, now, decision.outcome, None, decision.message):
            fired.outcomes.append((fire_time, decision.outcome, None))
        return error
    try:
        new_run = await prepare(s)
    except DomainError as exc:
        if await _record(conn, s.uuid, fire_time, now, FireOutcome.FAILED, None, str(exc)):
            fired.outcomes.append((fire_time, FireOutcome.FAILED, None))
        return f"the fire at {fire_time.isoformat()} failed: {exc}"
    if not await _record(conn, s.uuid, fire_time, now, FireOutcome.SUBMITTED, new_run.uuid, ""):
        return error  # that time was already fired
    if decision.cancel:
        message = f"cancelled by schedule {s.uuid}: replaced by the fire at {fire_time.isoformat()}"
        rows = await conn.fetch(q("cancel_for_schedule"), list(decision.cancel), message)
        fired.touched += [r["id"] for r in rows]
    await _submit(conn, box, s, new_run, fire_time)
    fired.outcomes.append((fire_time, FireOutcome.SUBMITTED, new_run.uuid))
    fired.queues.add(new_run.config.queue)
    return ""


async def _record(
    conn: asyncpg.Connection,
    schedule_id: UUID,
    fire_time: datetime,
    now: datetime,
    outcome: FireOutcome,
    run: UUID | None,
    message: str,
    manual: bool = False,
) -> bool:
    """Claim the fire time; False when it was acted on already."""
    claimed = await conn.fetchval(
        *bind(
            "insert_fire",
            schedule_id=schedule_id,
            fire_time=fire_time,
            handled_at=now,
            outcome=outcome.value,
            run_id=run,
            message=message[:1000],
            manual=manual,
        )
    )
    return claimed is not None


async def _submit(
    conn: asyncpg.Connection, box: SecretBox, s: Schedule, new_run: NewRun, fire_time: datetime
) -> Run:
    done = await run_store.submit(conn, box, _workspace(s), [new_run])
    await conn.execute(q("mark_run_scheduled"), new_run.uuid, s.uuid, fire_time)
    return done[0].run


async def release_buffered(
    pool: asyncpg.Pool, box: SecretBox, schedule_id: UUID, now: datetime, prepare: Prepare
) -> Fired | None:
    """Submit the run of a buffered fire (BUFFER_ONE) once the schedule's unfinished runs
    have ended; None when there is nothing to do (or another replica does it)."""
    fired = Fired(schedule_id)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("lock_due_schedule"), schedule_id)
        if row is None:
            return None
        s = schedule_from_row(row, box)
        fire_time = await conn.fetchval(q("buffered_fire"), s.uuid)
        if fire_time is None or await conn.fetch(q("unfinished_runs_of_schedule"), s.uuid):
            return None
        try:
            new_run = await prepare(s)
        except DomainError as exc:
            await _settle(conn, s.uuid, now, FireOutcome.FAILED, None, str(exc))
            await conn.execute(q("set_schedule_error"), s.uuid, f"a buffered fire failed: {exc}")
            fired.outcomes.append((fire_time, FireOutcome.FAILED, None))
            return fired
        await _settle(conn, s.uuid, now, FireOutcome.SUBMITTED, new_run.uuid, "")
        await _submit(conn, box, s, new_run, fire_time)
        await conn.execute(q("set_schedule_error"), s.uuid, "")
    fired.outcomes.append((fire_time, FireOutcome.SUBMITTED, new_run.uuid))
    fired.queues.add(new_run.config.queue)
    return fired


async def _settle(
    conn: asyncpg.Connection,
    schedule_id: UUID,
    now: datetime,
    outcome: FireOutcome,
    run: UUID | None,
    message: str,
) -> None:
    await conn.execute(
        *bind(
            "settle_buffered_fire",
            schedule_id=schedule_id,
            outcome=outcome.value,
            run_id=run,
            message=message[:1000],
            handled_at=now,
        )
    )


async def trigger(
    pool: asyncpg.Pool,
    box: SecretBox,
    ws: Workspace,
    schedule_id: UUID,
    now: datetime,
    prepare: Prepare,
) -> Run:
    """Submit a run of the schedule now, outside its timetable and overlap policy
    (recorded as a manual fire at `now`)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("lock_schedule"), ws.id, schedule_id)
        if row is None:
            raise ScheduleNotFound(str(schedule_id))
        s = schedule_from_row(row, box)
        new_run = await prepare(s)
        fire_time = now
        while not await _record(
            conn, s.uuid, fire_time, now, FireOutcome.SUBMITTED, new_run.uuid, "", manual=True
        ):
            fire_time += timedelta(microseconds=1)  # two triggers in one microsecond
        return await _submit(conn, box, s, new_run, fire_time)


async def due(pool: asyncpg.Pool, now: datetime, limit: int) -> list[UUID]:
    return [r["id"] for r in await pool.fetch(q("due_schedules"), now, limit)]


async def buffered_ready(pool: asyncpg.Pool, limit: int) -> list[UUID]:
    return [r["id"] for r in await pool.fetch(q("buffered_ready"), limit)]


async def next_due(pool: asyncpg.Pool) -> tuple[datetime | None, bool]:
    """The soonest fire time of an active schedule, and whether a fire is buffered."""
    row = await pool.fetchrow(q("next_due"))
    return row["next_fire_at"], row["buffered"]
