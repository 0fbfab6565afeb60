"""Typed queries for runs: submit (batched), read, list, cancel, delete."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import asyncpg

from batchyard.server.db import run_graph
from batchyard.server.db.job_codec import (
    SecretBox,
    canonical_json,
    config_from_json,
    config_to_json,
    secrets_to_json,
)
from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import RunNotFound, WrongState
from batchyard.server.domain.graph import ArraySummary, Dependency
from batchyard.server.domain.jobs import DEFAULT_QUEUE, Secrets
from batchyard.server.domain.runs import Attempt, NewRun, Run, RunReason, RunStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Submitted:
    run: Run
    deduplicated: bool


async def submit(
    pool: asyncpg.Pool, box: SecretBox, ws: Workspace, new_runs: list[NewRun]
) -> list[Submitted]:
    """Store runs in one statement; a known request_id returns the earlier run instead."""
    config_ids, configs, sealed, run_config_ids = _configs(box, new_runs)
    rows = await pool.fetch(
        *bind(
            "insert_runs",
            ids=[r.uuid for r in new_runs],
            workspace_id=ws.id,
            definition_ids=[r.definition_uuid for r in new_runs],
            definition_names=[r.definition_name for r in new_runs],
            definition_versions=[r.definition_version for r in new_runs],
            request_ids=[r.request_id or None for r in new_runs],
            queues=[r.config.queue or DEFAULT_QUEUE for r in new_runs],
            priorities=[r.config.priority for r in new_runs],
            payload_sizes=[len(r.payload) for r in new_runs],
            config_ids=config_ids,
            configs=configs,
            sealed_secrets=sealed,
            run_config_ids=run_config_ids,
            payloads=[r.payload for r in new_runs],
        )
    )
    inserted = {row["id"]: row for row in rows}
    earlier: dict[str, UUID] = {}
    missing = [r.request_id for r in new_runs if r.uuid not in inserted]
    if missing:
        found = await pool.fetch(q("run_ids_by_request_id"), ws.id, missing)
        earlier = {row["request_id"]: row["id"] for row in found}
    existing = await get_many(pool, box, ws, list(earlier.values())) if earlier else {}
    out = []
    for r in new_runs:
        if r.uuid in inserted:
            row = inserted[r.uuid]
            out.append(Submitted(_new_run(ws, r, row["submitted_at"]), deduplicated=False))
        else:
            out.append(Submitted(existing[earlier[r.request_id]], deduplicated=True))
    return out


def _configs(
    box: SecretBox, new_runs: list[NewRun]
) -> tuple[list[bytes], list[str], list[bytes], list[bytes]]:
    """The distinct configurations (ids, configs as JSON text, sealed secrets) and each
    run's id.

    An id is a keyed digest (HMAC) of the JSON of config and secrets, so equal contents
    share a row and the id tells nothing about the secrets without the server's key.
    Runs of one shape share their objects, so each is encoded, sealed and digested once
    per call."""
    ids: list[bytes] = []
    configs: list[str] = []
    secrets: list[bytes] = []
    per_run: list[bytes] = []
    memo: dict[tuple[int, int], bytes] = {}
    for r in new_runs:
        key = (id(r.config), id(r.secrets))
        config_id = memo.get(key)
        if config_id is None:
            config_text = canonical_json(config_to_json(r.config))
            secrets_text = canonical_json(secrets_to_json(r.secrets))
            config_id = box.config_id(config_text, secrets_text)
            memo[key] = config_id
            ids.append(config_id)
            configs.append(config_text)
            secrets.append(box.seal_text(secrets_text))
        per_run.append(config_id)
    return ids, configs, secrets, per_run


configs_of = _configs


def _new_run(ws: Workspace, r: NewRun, submitted_at: datetime) -> Run:
    return Run(
        uuid=r.uuid,
        workspace=ws.name,
        definition_uuid=r.definition_uuid,
        definition_name=r.definition_name,
        definition_version=r.definition_version,
        config=r.config,
        secrets=r.secrets,
        status=RunStatus.PENDING,
        reason=RunReason.RECENTLY_SUBMITTED,
        message="",
        cancel_requested=False,
        progress=0,
        attempts=(),
        num_retries_used=0,
        payload_size=len(r.payload),
        request_id=r.request_id,
        submit_time=submitted_at,
        start_time=None,
        end_time=None,
        next_attempt_time=None,
        revision=1,
    )


def _attempt(row: asyncpg.Record) -> Attempt:
    return Attempt(
        number=row["number"],
        worker_id=row["worker_id"],
        start_time=row["started_at"],
        end_time=row["ended_at"],
        status=RunStatus(row["status"]),
        reason=RunReason(row["reason"]),
        exit_code=row["exit_code"],
        message=row["message"],
        peak_memory_bytes=row["peak_memory_bytes"],
        cpu_usec=row["cpu_usec"],
        retry_budget=row["retry_budget"],
    )


def _run(
    row: asyncpg.Record,
    secrets: Secrets,
    attempts: tuple[Attempt, ...],
    graph: tuple[ArraySummary | None, list[Dependency]] = (None, []),
) -> Run:
    summary, deps = graph
    status, reason = run_graph.shown_status(row["status"], RunReason(row["reason"]), summary)
    message = row["message"]
    if row["status"] == "WAITING":
        message = run_graph.waiting_message(deps)
    return Run(
        uuid=row["id"],
        workspace=row["workspace"],
        definition_uuid=row["definition_id"],
        definition_name=row["definition_name"],
        definition_version=row["definition_version"],
        config=config_from_json(row["config"]),
        secrets=secrets,
        status=status,
        reason=reason,
        message=message,
        cancel_requested=row["cancel_requested"],
        progress=summary.progress if summary else row["progress"],
        attempts=attempts,
        num_retries_used=row["num_retries_used"],
        payload_size=row["payload_size"],
        request_id=row["request_id"] or "",
        submit_time=row["submitted_at"],
        start_time=row["started_at"],
        end_time=row["ended_at"],
        next_attempt_time=row["available_at"] if reason == RunReason.WAITING_FOR_RETRY else None,
        revision=row["revision"],
        parent_uuid=row["parent_id"],
        array_index=row["array_index"] or 0,
        array_size=row["array_size"],
        array_summary=summary,
        depends_on=tuple(deps),
        dependencies_waiting=row["dependencies_waiting"],
        schedule_uuid=row["schedule_id"],
        schedule_fire_time=row["schedule_fire_time"],
        tasks=row.get("tasks"),
        num_infra_retries_used=row["num_infra_retries_used"],
    )


async def get_many(
    pool: asyncpg.Pool, box: SecretBox, ws: Workspace, ids: list[UUID]
) -> dict[UUID, Run]:
    rows = await pool.fetch(q("get_runs"), ws.id, ids)
    attempts: dict[UUID, list[Attempt]] = defaultdict(list)
    if rows:
        for a in await pool.fetch(q("get_attempts"), [r["id"] for r in rows]):
            attempts[a["run_id"]].append(_attempt(a))
    summaries, deps = await run_graph.decorations(pool, rows) if rows else ({}, {})
    opened: dict[bytes, Secrets] = {}  # runs of one configuration share its sealed value
    for r in rows:
        sealed = r["sealed_secrets"]
        if sealed not in opened:
            opened[sealed] = box.open(sealed)
    return {
        r["id"]: _run(
            r,
            opened[r["sealed_secrets"]],
            tuple(attempts[r["id"]]),
            (summaries.get(r["id"]), deps.get(r["id"], [])),
        )
        for r in rows
    }


async def get(pool: asyncpg.Pool, box: SecretBox, ws: Workspace, run_id: UUID) -> Run:
    found = await get_many(pool, box, ws, [run_id])
    if run_id not in found:
        raise RunNotFound(str(run_id))
    return found[run_id]


@dataclass(frozen=True)
class RunFilter:
    definition_uuid: UUID | None = None
    definition_name: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    parent: UUID | None = None
    include_children: bool = False
    schedule_uuid: UUID | None = None
    queue: str | None = None


async def list_page(
    pool: asyncpg.Pool,
    box: SecretBox,
    ws: Workspace,
    filters: RunFilter,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Run]:
    stored, array_pending, array_running = run_graph.list_statuses(
        [s.value for s in filters.statuses]
    )
    rows = await pool.fetch(
        *bind(
            "list_runs",
            workspace_id=ws.id,
            definition_id=filters.definition_uuid,
            definition_name=filters.definition_name,
            statuses=stored,
            array_pending=array_pending,
            array_running=array_running,
            parent_id=filters.parent,
            include_children=filters.include_children,
            submitted_from=filters.submitted_from,
            submitted_to=filters.submitted_to,
            queue=filters.queue,
            after_submitted=after[0] if after else None,
            after_id=after[1] if after else None,
            limit=limit,
            schedule_id=filters.schedule_uuid,
        )
    )
    ids = [r["id"] for r in rows]
    found = await get_many(pool, box, ws, ids)
    return [found[i] for i in ids if i in found]


async def cancel(pool: asyncpg.Pool, ws: Workspace, run_id: UUID, message: str) -> None:
    """A pending run is cancelled now; a running one is asked to stop (its worker learns
    it from its next heartbeat)."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(q("cancel_pending_run"), ws.id, run_id, message) is not None:
            return
        if await conn.fetchval(q("request_cancel"), ws.id, run_id, message) is not None:
            return
        status = await conn.fetchval(q("run_status"), ws.id, run_id)
    if status is None:
        raise RunNotFound(str(run_id))
    if status == RunStatus.RUNNING:
        return  # already asked to stop
    raise WrongState(f"run {run_id} is {status}; only pending or running runs can be cancelled")


async def delete(pool: asyncpg.Pool, ws: Workspace, run_id: UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(q("delete_finished_run"), ws.id, run_id) is not None:
            return
        status = await conn.fetchval(q("run_status"), ws.id, run_id)
    if status is None:
        raise RunNotFound(str(run_id))
    raise WrongState(f"run {run_id} is {status}; only finished runs can be deleted")


async def notify_queues(pool: asyncpg.Pool, sender: str, queues: list[str]) -> None:
    await pool.execute(q("notify_queues"), sender, queues)


async def payload_of(pool: asyncpg.Pool, ws: Workspace, run_id: UUID) -> bytes:
    """The payload `run_id` was submitted with (RunNotFound if it is not ws's)."""
    row = await pool.fetchrow(*bind("run_payload", workspace=ws.id, run=run_id))
    if row is None:
        raise RunNotFound(str(run_id))
    return bytes(row["payload"] or b"")
