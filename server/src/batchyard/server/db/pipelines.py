"""Array runs and dependencies in the database: submitting a pipeline, settling what an
ended run does to its dependents and its array (in the transaction of the end), cancel
and delete of arrays, and what a run shows of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any
from uuid import UUID

import asyncpg

from batchyard.server.db import runs as store
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import RunNotFound, WrongState
from batchyard.server.domain.graph import Kind
from batchyard.server.domain.jobs import DEFAULT_QUEUE
from batchyard.server.domain.pipelines import Entry, Rows, Target, expand

SENDER_KEYS_MAX = 200
"""Watchers are woken by key for at most this many changed runs per settle (others see
the change at their next poll)."""
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


async def settle(conn: Any, ended: list[UUID], *, count_children: bool = True) -> list[str]:
    """What the runs that just ended (`ended`) do to the graph, to the end of the cascade,
    on `conn` (in the caller's transaction: an end and its consequences commit together).
    Returns the wake-up keys (queues of released runs, changed runs) — already NOTIFYed."""
    keys: set[str] = set()
    frontier, first = list(ended), True
    while frontier:
        rows = await conn.fetch(
            *bind("settle_ended", ended=frontier, count_children=count_children or not first)
        )
        first = False
        frontier = []
        for r in rows:
            if r["status"] == "PENDING":
                keys.add(r["queue"])
            elif r["status"] in FINISHED:
                frontier.append(r["id"])
            if len(keys) < SENDER_KEYS_MAX:
                keys.add(f"@{r['id']}")
    if keys:
        await conn.execute(*bind("notify_released", keys=sorted(keys)))
    return sorted(keys)


async def after_end(conn: Any, run: UUID) -> None:
    """The hook at the end of an attempt that ended its run (attempt_end.py)."""
    await settle(conn, [run])


async def submit(
    pool: asyncpg.Pool, box: SecretBox, ws: Workspace, entries: list[Entry]
) -> list[store.Submitted]:
    """Store a pipeline call atomically; entries whose request_id is known return the
    earlier run. Unknown runs (or another workspace's) named in depends_on: RunNotFound."""
    for attempt in range(2):
        try:
            return await _submit(pool, box, ws, entries)
        except asyncpg.UniqueViolationError as exc:
            if attempt or exc.constraint_name != "runs_request_id_key":
                raise
    raise AssertionError("unreachable")


async def _submit(
    pool: asyncpg.Pool, box: SecretBox, ws: Workspace, entries: list[Entry]
) -> list[store.Submitted]:
    async with pool.acquire() as conn, conn.transaction():
        keys = [e.run.request_id for e in entries if e.run.request_id]
        known: dict[str, UUID] = {}
        if keys:
            found = await conn.fetch(q("run_ids_by_request_id"), ws.id, keys)
            known = {r["request_id"]: r["id"] for r in found}
        fresh = [not (e.run.request_id and e.run.request_id in known) for e in entries]
        ids = [
            e.run.uuid if f else known[e.run.request_id]
            for e, f in zip(entries, fresh, strict=True)
        ]
        entries = [_by_uuid(e, ids, fresh) for e in entries]
        targets = await _targets(conn, ws, [e for e, f in zip(entries, fresh, strict=True) if f])
        rows = expand(entries, ids, targets, fresh)
        if rows.runs:
            await _insert(conn, box, ws, rows)
        ended = [t for t, found in targets.items() if found.status in FINISHED]
        ended += [c for found in targets.values() for c in found.children]
        if ended and rows.edges:
            await settle(conn, ended, count_children=False)
        if "PENDING" in rows.statuses:
            queues = sorted({r.config.queue or DEFAULT_QUEUE for r in rows.runs})
            await conn.execute(*bind("notify_released", keys=queues))
    runs = await store.get_many(pool, box, ws, ids)
    return [store.Submitted(runs[i], deduplicated=not f) for i, f in zip(ids, fresh, strict=True)]


def _by_uuid(entry: Entry, ids: list[UUID], fresh: list[bool]) -> Entry:
    """`entry` with its references to deduplicated entries (runs that exist) by uuid."""
    specs = tuple(
        replace(s, run=ids[s.entry], entry=None)
        if s.entry is not None and not fresh[s.entry]
        else s
        for s in entry.depends_on
    )
    return replace(entry, depends_on=specs)


async def _targets(conn: Any, ws: Workspace, entries: list[Entry]) -> dict[UUID, Target]:
    """The runs named by uuid, locked; N_TO_N targets with their children."""
    named = sorted({s.run for e in entries for s in e.depends_on if s.run is not None})
    if not named:
        return {}
    rows = await conn.fetch(*bind("lock_dependency_targets", workspace_id=ws.id, ids=named))
    found = {r["id"]: Target(r["status"], r["array_size"]) for r in rows}
    for name in named:
        if name not in found:
            raise RunNotFound(str(name))  # exactly what GetRun says of a missing run
    arrays = sorted(
        {
            s.run
            for e in entries
            for s in e.depends_on
            if s.run is not None and s.kind == Kind.N_TO_N
        }
    )
    if arrays:
        kids = await conn.fetch(*bind("lock_children", parents=arrays))
        by_parent: dict[UUID, list[tuple[int, UUID]]] = defaultdict(list)
        for k in kids:
            by_parent[k["parent_id"]].append((k["array_index"], k["id"]))
        for parent, children in by_parent.items():
            found[parent].children = [c for _, c in sorted(children)]
    return found


async def _insert(conn: Any, box: SecretBox, ws: Workspace, rows: Rows) -> None:
    config_ids, configs, sealed, run_config_ids = store.configs_of(box, rows.runs)
    await conn.execute(
        *bind(
            "insert_pipeline_runs",
            ids=rows.ids,
            workspace_id=ws.id,
            definition_ids=[r.definition_uuid for r in rows.runs],
            definition_names=[r.definition_name for r in rows.runs],
            definition_versions=[r.definition_version for r in rows.runs],
            request_ids=rows.request_ids,
            queues=[r.config.queue or DEFAULT_QUEUE for r in rows.runs],
            priorities=[r.config.priority for r in rows.runs],
            payload_sizes=[len(p) for p in rows.payloads],
            statuses=rows.statuses,
            parent_ids=rows.parents,
            array_indexes=rows.indexes,
            array_sizes=rows.sizes,
            waiting=rows.waiting,
            config_ids=config_ids,
            configs=configs,
            sealed_secrets=sealed,
            run_config_ids=run_config_ids,
            payloads=rows.payloads,
        )
    )
    if rows.edges:
        cols = list(zip(*rows.edges, strict=True))
        await conn.execute(
            *bind(
                "insert_dependencies",
                run_ids=list(cols[0]),
                depends_on=list(cols[1]),
                conditions=list(cols[2]),
                kinds=list(cols[3]),
                positions=list(cols[4]),
            )
        )


async def cancel(conn: Any, ws: Workspace, run_id: UUID, message: str) -> bool:
    """Cancel a waiting run or a whole array (its unfinished children too); False when
    `run_id` is neither (the caller goes on with a plain cancel)."""
    if await conn.fetchval(
        *bind("cancel_waiting_run", workspace_id=ws.id, run=run_id, message=message)
    ):
        await settle(conn, [run_id])
        return True
    row = await conn.fetchrow(q("stored_status"), ws.id, run_id)
    if row is None or row["status"] != "ARRAY":
        return False
    # Children first, then the parent: the order a child's end locks them in (no deadlock).
    children = await conn.fetch(*bind("cancel_array_children", run=run_id, message=message))
    if not await conn.fetchval(
        *bind("cancel_array_parent", workspace_id=ws.id, run=run_id, message=message)
    ):
        return False  # it ended meanwhile: its children had all ended, nothing was changed
    await settle(conn, [run_id, *(c["id"] for c in children)])
    return True


async def cancel_run(pool: asyncpg.Pool, ws: Workspace, run_id: UUID, message: str) -> None:
    """CancelRun: a waiting or pending run, or an array with its children, ends now (and
    its dependents learn it in the same transaction); a running one is asked to stop."""
    async with pool.acquire() as conn, conn.transaction():
        if await cancel(conn, ws, run_id, message):
            return
        if await conn.fetchval(q("cancel_pending_run"), ws.id, run_id, message) is not None:
            await settle(conn, [run_id])
            return
    await store.cancel(pool, ws, run_id, message)


async def delete_array(pool: asyncpg.Pool, ws: Workspace, run_id: UUID) -> bool:
    """Delete a finished array with its children; False when `run_id` is not an array
    parent. WrongState while a child is unfinished."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("stored_status"), ws.id, run_id)
        if row is None or not row["array_size"] or row["parent_id"] is not None:
            return False
        n = await conn.fetchval(*bind("delete_array", workspace_id=ws.id, run=run_id))
    if not n:
        raise WrongState(f"run {run_id} is not finished (or a child still runs)")
    return True


async def array_places(pool: asyncpg.Pool, ids: list[UUID]) -> dict[UUID, tuple[int, int]]:
    """Index and size of the array children among leased runs."""
    rows = await pool.fetch(*bind("array_places", ids=ids))
    return {r["id"]: (r["array_index"], r["array_size"]) for r in rows}


async def sweep(pool: asyncpg.Pool, limit: int = 1000) -> int:
    """Re-check what a crash could have left unsettled: ended runs with waiting
    dependents, open arrays whose children all ended. Returns how many were settled."""
    done = 0
    async with pool.acquire() as conn, conn.transaction():
        arrays = [r["id"] for r in await conn.fetch(q("sweep_arrays"))]
        if arrays:
            await settle(conn, arrays, count_children=False)
        done += len(arrays)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            ended = [
                r["depends_on"] for r in await conn.fetch(*bind("sweep_unreleased", limit=limit))
            ]
            if ended:
                await settle(conn, ended, count_children=False)
        done += len(ended)
        if len(ended) < limit:
            return done
