"""Applying the end of an attempt: the one place an attempt is closed and its run moved
on, whoever ends it — its worker (CompleteRun, ReleaseRun) or the rescuer (an expired
lease). What the end does to the run is the domain's rule (`domain.attempts`); here it
is applied, fenced by (run, attempt, lease id) and the database clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from batchyard.server.db import pipelines
from batchyard.server.db import results as run_results
from batchyard.server.db.job_codec import config_from_json
from batchyard.server.db.sql import bind, q
from batchyard.server.domain.attempts import (
    Applied,
    Fence,
    Next,
    Outcome,
    Rescued,
    after_attempt,
    released,
    worker_lost,
)
from batchyard.server.domain.errors import LeaseLost, OutcomeConflict
from batchyard.server.domain.results import Result
from batchyard.server.domain.runs import RunStatus


def _visible(row: asyncpg.Record | None, fence: Fence) -> asyncpg.Record | None:
    """The locked run, or None when it is another workspace's (as if it did not exist)."""
    if row is None or fence.workspace_id is None or row["workspace_id"] == fence.workspace_id:
        return row
    return None


def _holds_lease(row: asyncpg.Record | None, fence: Fence) -> bool:
    return (
        row is not None
        and row["status"] == RunStatus.RUNNING
        and row["attempt"] == fence.attempt
        and row["lease_id"] == fence.lease_id
        and row["lease_live"]
    )


async def _end(
    conn: Any, fence: Fence, outcome: Outcome, nxt: Next, ended_by: str, progress: int | None
) -> tuple[RunStatus, datetime | None]:
    """Close the attempt and move the run to `nxt`; returns its status and next start."""
    await conn.execute(
        *bind(
            "end_attempt",
            run=fence.run,
            attempt=fence.attempt,
            status=outcome.status.value,
            reason=outcome.reason.value,
            exit_code=outcome.exit_code,
            message=outcome.message,
            ended_by=ended_by,
            peak_memory_bytes=outcome.peak_memory_bytes,
            cpu_usec=outcome.cpu_usec,
            retry_budget=nxt.budget,
        )
    )
    row = await conn.fetchrow(
        *bind(
            "set_run_after_attempt",
            run=fence.run,
            status=nxt.status.value,
            reason=nxt.reason.value,
            message=outcome.message,
            retries_used=1 if nxt.budget == "job" else 0,
            infra_retries_used=1 if nxt.budget == "infra" else 0,
            delay_seconds=nxt.delay_seconds,
            progress=progress,
        )
    )
    retrying = nxt.status == RunStatus.PENDING
    return RunStatus(row["status"]), row["available_at"] if retrying else None


async def complete_with_logs(
    pool: asyncpg.Pool,
    fence: Fence,
    outcome: Outcome,
    progress: int | None,
    logs: tuple[int, int, bytes],
) -> Applied | None:
    """A success and the attempt's last log entries (first seq, last seq, data) in one
    statement, when they continue the stored log; None: take the general path."""
    if outcome.status != RunStatus.SUCCEEDED:
        return None
    first, last, data = logs
    async with pool.acquire() as conn, conn.transaction():
        queue = await conn.fetchval(
            *bind(
                "complete_succeeded_with_logs",
                **asdict(fence),  # run, attempt, lease_id, workspace_id
                message=outcome.message,
                exit_code=outcome.exit_code,
                progress=progress,
                peak_memory_bytes=outcome.peak_memory_bytes,
                cpu_usec=outcome.cpu_usec,
                first_seq=first,
                last_seq=last,
                entries=data,
            )
        )
        if queue is not None:
            await pipelines.after_end(conn, fence.run)
    return Applied(RunStatus.SUCCEEDED, None, queue) if queue is not None else None


async def complete(
    pool: asyncpg.Pool,
    fence: Fence,
    outcome: Outcome,
    progress: int | None,
    results: Sequence[Result] = (),
) -> Applied:
    """Record how an attempt ended, with the results it stored, and move the run on
    (retry, or a terminal status)."""
    async with pool.acquire() as conn, conn.transaction():
        row = _visible(await conn.fetchrow(q("lock_run_for_worker"), fence.run), fence)
        if not _holds_lease(row, fence):
            return await _repeated_completion(conn, fence, outcome, row)
        assert row is not None
        if results:
            await run_results.insert(conn, fence.run, fence.attempt, list(results))
        strategy = config_from_json(row["config"]).retry_strategy
        nxt = after_attempt(outcome, strategy, row["num_retries_used"], row["cancel_requested"])
        status, next_start = await _end(conn, fence, outcome, nxt, "worker", progress)
        if status.finished:
            await pipelines.after_end(conn, fence.run)
    return Applied(status, next_start, row["queue"])


async def _repeated_completion(
    conn: Any, fence: Fence, outcome: Outcome, run: asyncpg.Record | None
) -> Applied:
    """A CompleteRun for an attempt that already ended: OK if it is the same report."""
    attempt = await conn.fetchrow(q("get_attempt"), fence.run, fence.attempt)
    if run is None or attempt is None or attempt["lease_id"] != fence.lease_id:
        raise LeaseLost(f"lease on run {fence.run} attempt {fence.attempt} is gone")
    if attempt["ended_by"] != "worker":
        raise LeaseLost(f"attempt {fence.attempt} of run {fence.run} was ended without its worker")
    same = (
        attempt["status"] == outcome.status.value
        and attempt["reason"] == outcome.reason.value
        and attempt["exit_code"] == outcome.exit_code
    )
    if not same:
        raise OutcomeConflict(
            f"attempt {fence.attempt} of run {fence.run} already ended as {attempt['status']}"
        )
    return Applied(RunStatus(run["status"]), None, run["queue"])


async def release(pool: asyncpg.Pool, fence: Fence, message: str) -> Applied:
    """Hand a run back unfinished: the attempt ends, the run is leasable at once."""
    async with pool.acquire() as conn, conn.transaction():
        row = _visible(await conn.fetchrow(q("lock_run_for_worker"), fence.run), fence)
        if not _holds_lease(row, fence):
            raise LeaseLost(f"lease on run {fence.run} attempt {fence.attempt} is gone")
        assert row is not None
        outcome, nxt = released(message, row["cancel_requested"])
        status, _ = await _end(conn, fence, outcome, nxt, "release", None)
        if status.finished:
            await pipelines.after_end(conn, fence.run)
    return Applied(status, None, row["queue"])


async def rescue_expired(
    pool: asyncpg.Pool, limit: int = 100, now: datetime | None = None
) -> list[Rescued]:
    """Turn leases expired at `now` (None: by the database clock) into a new attempt
    (worker lost) or a failure, and fence their workers (in the same transaction: a
    long-poll that sees the rescued run sees its worker fenced)."""
    out = []
    lost: set[tuple[UUID, str]] = set()
    async with pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(q("lock_expired_leases"), limit, now):
            strategy = config_from_json(row["config"]).retry_strategy
            worker = row["worker_id"] or "?"
            outcome = worker_lost(worker)
            nxt = after_attempt(
                outcome,
                strategy,
                row["num_retries_used"],
                row["cancel_requested"],
                row["num_infra_retries_used"],
            )
            fence = Fence(row["id"], row["attempt"], UUID(int=0))
            status, _ = await _end(conn, fence, outcome, nxt, "rescuer", None)
            if status.finished:
                await pipelines.after_end(conn, fence.run)
            out.append(Rescued(row["id"], row["attempt"], worker, status, row["queue"]))
            lost.add((row["workspace_id"], worker))
        if lost:  # no new work for them until they prove alive again
            await conn.execute(
                *bind(
                    "fence_workers",
                    workspaces=[w for w, _ in lost],
                    worker_ids=[w for _, w in lost],
                )
            )
    return out
