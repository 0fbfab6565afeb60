"""The retention service: deletes what the workspaces' policies no longer keep.

Each pass walks every workspace with a policy: finished runs past their period or beyond
the latest K of their definition (domain/retention.py), skipped and failed schedule
fires past the period, audit events past theirs; then configurations no run refers to.
Runs go in short batches (db/retention.py) with their attempts, logs, result listings
and, after each batch commits, their result files in the artifact store. Safe in every
replica at once: a batch skips the rows another one holds.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import structlog

from batchyard.server.artifacts import ArtifactStore, run_prefix
from batchyard.server.db import retention as store
from batchyard.server.db.errors import is_transient
from batchyard.server.db.schedules import database_now
from batchyard.server.domain.retention import FAILED_LIKE, Policy
from batchyard.server.maintenance.clock import Clock, SystemClock

log = structlog.get_logger(__name__)
FILE_DELETES_IN_FLIGHT = 16
INTERVAL_SECONDS = 300.0
MIN_PAUSE = 0.01


class RunPurger:
    """Deletes given finished runs in batches, with their files, then the orphaned
    configurations (also DeleteRuns' way to delete)."""

    def __init__(self, pool: asyncpg.Pool, artifacts: ArtifactStore) -> None:
        self._pool = pool
        self._artifacts = artifacts

    async def purge(self, ids: list[UUID]) -> store.Deleted:
        total, configs = store.Deleted(), set[bytes]()
        loop = asyncio.get_running_loop()
        for i in range(0, len(ids), store.BATCH):
            began = loop.time()
            done, used = await store.delete_runs(self._pool, ids[i : i + store.BATCH])
            total.runs += done.runs
            configs.update(used)
            await self._delete_files(done.with_results)
            # As long a pause as the batch took: a deletion takes at most about half of
            # the time, so leasing, submitting and log appends keep their share.
            await asyncio.sleep(max(MIN_PAUSE, loop.time() - began))
        total.configs = await store.collect_configs(self._pool, sorted(configs))
        return total

    async def _delete_files(self, runs: list[UUID]) -> None:
        gate = asyncio.Semaphore(FILE_DELETES_IN_FLIGHT)

        async def one(run: UUID) -> None:
            async with gate:
                try:
                    await self._artifacts.delete_prefix(run_prefix(run))
                except Exception as exc:  # the store is away: the files stay, the run is gone
                    log.warning("result_files_not_deleted", run=str(run), error=repr(exc))

        await asyncio.gather(*(one(r) for r in runs))


class Retention:
    name = "retention"

    def __init__(
        self,
        pool: asyncpg.Pool,
        purger: RunPurger,
        interval_seconds: float = INTERVAL_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        self._pool = pool
        self._purger = purger
        self._interval = interval_seconds
        self._clock = clock or SystemClock()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def run_once(self, now: datetime | None = None) -> store.Deleted:
        """One pass by the policies at `now` (None: the clock's time)."""
        now = now or self._clock.now() or await database_now(self._pool)
        total = store.Deleted()
        for workspace_id in await store.workspaces_with_policies(self._pool):
            await self._workspace(workspace_id, now, total)
        total.configs += await self._sweep_configs()
        if total.runs or total.configs:
            log.info("retention_pass", runs=total.runs, configs=total.configs)
        return total

    async def _drain(self, select: object, total: store.Deleted) -> None:
        """Delete batch after batch of what `select()` finds, until nothing is left."""
        while ids := await select():  # type: ignore[operator]
            done = await self._purger.purge(ids)
            total.runs += done.runs
            total.configs += done.configs
            if done.runs == 0:
                return  # all held by others: a later pass

    async def _workspace(self, workspace_id: UUID, now: datetime, total: store.Deleted) -> None:
        base, overrides = await store.policies(self._pool, workspace_id)
        pool = self._pool
        own_period = [d for d, p in overrides.items() if p.keep_seconds is not None]
        if base.keep_seconds is not None:
            cutoff = now - timedelta(seconds=base.keep_seconds)
            await self._drain(
                lambda: store.ended_before(pool, workspace_id, cutoff, None, own_period), total
            )
        for definition in own_period:
            cutoff_d = now - timedelta(seconds=overrides[definition].keep_seconds or 0)
            await self._drain(
                lambda d=definition, c=cutoff_d: store.ended_before(pool, workspace_id, c, d, []),
                total,
            )
        for definition in await store.definitions_of(pool, workspace_id):
            await self._latest(definition, overrides.get(definition, Policy()).over(base), total)
        if base.keep_seconds is not None:
            cutoff_f = now - timedelta(seconds=base.keep_seconds)
            while await store.delete_old_fires(pool, workspace_id, cutoff_f) == store.BATCH:
                pass  # each call is one short batch
        if base.audit_keep_seconds is not None:
            cutoff_a = now - timedelta(seconds=base.audit_keep_seconds)
            while await store.delete_old_audit(pool, workspace_id, cutoff_a) == store.BATCH:
                pass

    async def _latest(self, definition: UUID, p: Policy, total: store.Deleted) -> None:
        rules = ((p.keep_succeeded, ["SUCCEEDED"]), (p.keep_failed, FAILED_LIKE))
        for keep, statuses in rules:
            if keep is not None:
                await self._drain(
                    lambda k=keep, s=statuses: store.beyond_latest(self._pool, definition, s, k),
                    total,
                )

    async def _sweep_configs(self) -> int:
        """Configurations no run refers to, wherever they came from (DeleteRun too)."""
        gone, after = 0, b""
        while candidates := await store.orphan_configs(self._pool, after, store.CONFIG_BATCH):
            gone += await store.collect_configs(self._pool, candidates)
            after = candidates[-1]
        return gone

    async def run(self) -> None:
        """A pass every interval; a database that is away skips a pass."""
        while True:
            await self._clock.sleep(self._interval)
            try:
                await self.run_once()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("retention_pass_skipped", error=type(exc).__name__)
