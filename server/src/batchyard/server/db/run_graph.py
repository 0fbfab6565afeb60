"""What a run shows of the graph it is in, read with it: an array parent's children
counted by status, a run's dependencies, and the status the API shows for the internal
ones (WAITING and ARRAY are PENDING or RUNNING to users)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

import asyncpg

from batchyard.server.db.sql import bind
from batchyard.server.domain.graph import ArraySummary, Condition, Dependency, Kind
from batchyard.server.domain.runs import RunReason, RunStatus

SHOWN_DEPENDENCIES = 3
"""How many unmet dependencies a waiting run's message names."""


async def decorations(
    conn: Any, rows: list[asyncpg.Record]
) -> tuple[dict[UUID, ArraySummary], dict[UUID, list[Dependency]]]:
    """The array summaries of parents and the dependencies of every run in `rows`."""
    parents = [r["id"] for r in rows if r["array_size"] and r["parent_id"] is None]
    summaries: dict[UUID, ArraySummary] = {}
    if parents:
        counts: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for c in await conn.fetch(*bind("array_summaries", parents=parents)):
            got = counts[c["parent_id"]]
            got[c["status"]] += c["n"]
            got["progress"] += c["progress"] or 0
            got["started"] += c["started"]
        size = {r["id"]: r["array_size"] for r in rows}
        for p in parents:
            got = counts[p]
            summaries[p] = ArraySummary(
                size=size[p],
                pending=got["PENDING"] + got["WAITING"],
                running=got["RUNNING"],
                succeeded=got["SUCCEEDED"],
                failed=got["FAILED"],
                cancelled=got["CANCELLED"],
                started=got["started"],
                progress=got["progress"] // size[p],
            )
    deps: dict[UUID, list[Dependency]] = defaultdict(list)
    for d in await conn.fetch(*bind("dependencies_of", runs=[r["id"] for r in rows])):
        if d["run_id"] == d["depends_on"] and d["kind"] != "SEQUENTIAL":
            continue
        deps[d["run_id"]].append(
            Dependency(d["depends_on"], Condition(d["condition"]), Kind(d["kind"]), d["met"])
        )
    return summaries, deps


def shown_status(
    stored: str, reason: RunReason, summary: ArraySummary | None
) -> tuple[RunStatus, RunReason]:
    """The status users see of a stored status."""
    if stored == "WAITING":
        return RunStatus.PENDING, RunReason.WAITING_ON_DEPENDENCIES
    if stored == "ARRAY":
        ended = summary.succeeded + summary.failed + summary.cancelled if summary else 0
        if summary is not None and (summary.started or ended):
            return RunStatus.RUNNING, RunReason.NONE
        return RunStatus.PENDING, reason
    return RunStatus(stored), reason


def waiting_message(deps: list[Dependency]) -> str:
    """ "waiting on 2 dependencies: <uuid>, <uuid>"."""
    open_ = [d for d in deps if not d.met]
    if not open_:
        return "waiting on dependencies"
    named = ", ".join(str(d.run) for d in open_[:SHOWN_DEPENDENCIES])
    more = ", ..." if len(open_) > SHOWN_DEPENDENCIES else ""
    noun = "dependency" if len(open_) == 1 else "dependencies"
    return f"waiting on {len(open_)} {noun}: {named}{more}"


def list_statuses(statuses: list[str]) -> tuple[list[str] | None, bool, bool]:
    """A ListRuns status filter over stored statuses: the stored ones, and whether array
    parents not started (PENDING) or started (RUNNING) match."""
    if not statuses:
        return None, False, False
    stored = list(statuses)
    if "PENDING" in statuses:
        stored.append("WAITING")
    return stored, "PENDING" in statuses, "RUNNING" in statuses
