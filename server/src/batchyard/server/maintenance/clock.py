"""The clock maintenance services run by, injected so tests drive them without sleeping.

`now()` is the time a pass judges by. The system clock answers None: the database's own
clock (`clock_timestamp()`) judges, never a process clock (lease expiry must not depend on
which replica looks). A test's `ManualClock` answers its own time and moves only when told.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime | None:
        """The time to judge by; None: the database's clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait between passes."""
        ...


class SystemClock:
    def now(self) -> datetime | None:
        return None

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock for tests: `sleep` advances it at once; `advance` moves it."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime | None:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)
