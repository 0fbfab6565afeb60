"""The scheduler: fires due schedules, in every server replica at once.

Each pass acts on the schedules whose next fire time has come (db/schedule_fires.py:
one short transaction per schedule, exactly once per fire time by a database key), and
on buffered fires whose schedule's runs have ended. Between passes it sleeps until the
soonest next fire time, woken early when a schedule changes (a local poke, or a NOTIFY
from another replica); at most POLL_SECONDS, so a missed notification costs latency,
never a fire. Time is the clock's (`maintenance/clock.py`): the database's, or a test's.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from uuid import UUID

import asyncpg
import structlog

from batchyard.server.db import schedule_fires as fires
from batchyard.server.db.errors import is_transient
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.schedules import database_now
from batchyard.server.db.wakeups import Wakeups, run_key
from batchyard.server.maintenance.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

SCHEDULES_KEY = "@schedules"
"""The wake-up key of schedule changes (like run keys, it cannot be a queue name)."""
BATCH = 100
IN_FLIGHT = 4
"""Schedules fired at once (each holds a pool connection for its transaction)."""
POLL_SECONDS = 30.0
BUFFERED_POLL_SECONDS = 1.0
"""How soon a buffered fire notices that its schedule's runs have ended."""


class Scheduler:
    name = "scheduler"

    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        wakeups: Wakeups,
        prepare: fires.Prepare,
        clock: Clock | None = None,
    ) -> None:
        self._pool = pool
        self._box = box
        self._wakeups = wakeups
        self._prepare = prepare
        self._clock = clock or SystemClock()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def now(self) -> datetime:
        return self._clock.now() or await database_now(self._pool)

    async def run_once(self, now: datetime | None = None) -> list[fires.Fired]:
        """One pass at `now` (None: the clock's time)."""
        now = now or await self.now()
        done: list[fires.Fired] = []
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def fire(schedule_id: UUID) -> None:
            async with gate:
                fired = await fires.fire_due(self._pool, self._box, schedule_id, now, self._prepare)
            if fired is not None:
                self._report(fired)
                done.append(fired)

        while True:
            due = await fires.due(self._pool, now, BATCH)
            await asyncio.gather(*(fire(schedule_id) for schedule_id in due))
            if len(due) < BATCH:
                break
        for schedule_id in await fires.buffered_ready(self._pool, BATCH):
            fired = await fires.release_buffered(
                self._pool, self._box, schedule_id, now, self._prepare
            )
            if fired is not None:
                self._report(fired)
                done.append(fired)
        return done

    def _report(self, fired: fires.Fired) -> None:
        for fire_time, outcome, run in fired.outcomes:
            log.info(
                "schedule_fired",
                schedule=str(fired.schedule),
                fire_time=fire_time.isoformat(),
                outcome=outcome.value,
                run=str(run) if run else "",
            )
        if fired.queues:
            self._wakeups.poke(fired.queues)
        if fired.touched:
            self._wakeups.poke([run_key(r) for r in fired.touched])

    async def delay(self) -> float:
        """Seconds until the next pass is due."""
        next_fire, buffered = await fires.next_due(self._pool)
        wait = POLL_SECONDS
        if next_fire is not None:
            wait = min(wait, max(0.0, (next_fire - await self.now()).total_seconds()))
        if buffered:
            wait = min(wait, BUFFERED_POLL_SECONDS)
        return wait

    async def run(self) -> None:
        """Passes until cancelled; a database that is away skips a pass, anything else is
        a crash for the supervisor to report."""
        while True:
            with self._wakeups.waiter([SCHEDULES_KEY], background=True) as changed:
                wait = POLL_SECONDS
                try:
                    await self.run_once()
                    wait = await self.delay()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    log.warning("schedule_pass_skipped", error=type(exc).__name__)
                await self._sleep(changed, wait)

    async def _sleep(self, changed: asyncio.Event, seconds: float) -> None:
        """The clock's sleep, cut short by a change of any schedule."""
        woken = asyncio.create_task(changed.wait())
        slept = asyncio.create_task(self._clock.sleep(seconds))
        try:
            await asyncio.wait([woken, slept], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, slept):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
