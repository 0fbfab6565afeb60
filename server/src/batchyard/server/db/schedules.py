"""Typed queries for schedules: create, read, list, replace, delete, pause and resume.
Their fires (what the scheduler and TriggerSchedule do) are in schedule_fires.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.jobs import Secrets
from batchyard.server.domain.schedules import (
    Fire,
    FireOutcome,
    Overlap,
    Schedule,
    ScheduleNotFound,
    Timetable,
)

RECENT_FIRES = 10


def schedule_from_row(row: asyncpg.Record, box: SecretBox | None) -> Schedule:
    """The schedule of a row; `box` None leaves its secrets out (they cannot be opened)."""
    return Schedule(
        uuid=row["id"],
        workspace_id=row["workspace_id"],
        workspace=row["workspace"],
        definition=row["definition_ref"],
        overrides=row["overrides"],
        secrets=box.open(row["sealed_secrets"]) if box is not None else Secrets(),
        payload=row["payload"],
        timetable=Timetable(
            cron=row["cron"],
            interval_seconds=row["interval_seconds"],
            time_zone=row["time_zone"],
            anchor=row["anchor_at"],
            start=row["start_at"],
            end=row["end_at"],
        ),
        overlap=Overlap(row["overlap_policy"]),
        max_concurrent_runs=row["max_concurrent_runs"],
        catchup_seconds=row["catchup_seconds"],
        note=row["note"],
        paused=row["paused"],
        next_fire_at=row["next_fire_at"],
        missed_fires=row["missed_fires"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _columns(box: SecretBox, s: Schedule) -> dict[str, Any]:
    t = s.timetable
    return {
        "id": s.uuid,
        "workspace_id": s.workspace_id,
        "definition_ref": s.definition,
        "overrides": s.overrides,
        "sealed_secrets": box.seal(s.secrets),
        "payload": s.payload,
        "cron": t.cron,
        "interval_seconds": t.interval_seconds,
        "time_zone": t.time_zone,
        "overlap_policy": s.overlap.value,
        "max_concurrent_runs": s.max_concurrent_runs,
        "catchup_seconds": s.catchup_seconds,
        "start_at": t.start,
        "end_at": t.end,
        "anchor_at": t.anchor,
        "note": s.note,
        "next_fire_at": s.next_fire_at,
    }


async def create(pool: asyncpg.Pool, box: SecretBox, s: Schedule) -> None:
    await pool.execute(*bind("insert_schedule", **_columns(box, s)))


async def replace(pool: asyncpg.Pool, box: SecretBox, s: Schedule) -> None:
    if await pool.fetchval(*bind("update_schedule", **_columns(box, s))) is None:
        raise ScheduleNotFound(str(s.uuid))


async def get_many(
    pool: asyncpg.Pool, box: SecretBox, ws: Workspace, ids: list[UUID]
) -> dict[UUID, Schedule]:
    rows = await pool.fetch(q("get_schedules"), ws.id, ids)
    return {r["id"]: schedule_from_row(r, box) for r in rows}


async def get(pool: asyncpg.Pool, box: SecretBox, ws: Workspace, schedule_id: UUID) -> Schedule:
    found = await get_many(pool, box, ws, [schedule_id])
    if schedule_id not in found:
        raise ScheduleNotFound(str(schedule_id))
    return found[schedule_id]


async def recent_fires(
    pool: asyncpg.Pool, schedule_id: UUID, limit: int = RECENT_FIRES
) -> list[Fire]:
    rows = await pool.fetch(q("recent_fires_of"), schedule_id, limit)
    return [
        Fire(
            fire_time=r["fire_time"],
            handled_at=r["handled_at"],
            outcome=FireOutcome(r["outcome"]),
            run=r["run_id"],
            run_status=r["run_status"],
            message=r["message"],
            manual=r["manual"],
        )
        for r in rows
    ]


async def list_page(
    pool: asyncpg.Pool,
    box: SecretBox,
    ws: Workspace,
    definition: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Schedule]:
    rows = await pool.fetch(
        *bind(
            "list_schedules",
            workspace_id=ws.id,
            definition_ref=definition,
            after_created=after[0] if after else None,
            after_id=after[1] if after else None,
            limit=limit,
        )
    )
    ids = [r["id"] for r in rows]
    found = await get_many(pool, box, ws, ids)
    return [found[i] for i in ids if i in found]


async def delete(pool: asyncpg.Pool, ws: Workspace, schedule_id: UUID) -> None:
    if await pool.fetchval(q("delete_schedule"), ws.id, schedule_id) is None:
        raise ScheduleNotFound(str(schedule_id))


async def set_paused(
    pool: asyncpg.Pool,
    ws: Workspace,
    schedule_id: UUID,
    paused: bool,
    next_fire_at: datetime | None,
) -> None:
    done = await pool.fetchval(
        *bind(
            "set_schedule_paused",
            workspace_id=ws.id,
            id=schedule_id,
            paused=paused,
            next_fire_at=next_fire_at,
        )
    )
    if done is None:
        raise ScheduleNotFound(str(schedule_id))


async def database_now(pool: asyncpg.Pool) -> datetime:
    now: datetime = await pool.fetchval(q("database_now"))
    return now
