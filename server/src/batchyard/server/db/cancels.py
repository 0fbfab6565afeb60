"""Typed query for WaitForCancel: has a leased run's cancel been requested?"""

from __future__ import annotations

from dataclasses import asdict

import asyncpg

from batchyard.server.db.sql import bind
from batchyard.server.domain.attempts import Fence
from batchyard.server.domain.errors import LeaseLost


async def cancel_requested(pool: asyncpg.Pool, fence: Fence) -> bool:
    """Whether the run held by `fence` was asked to stop (LeaseLost: it is not held)."""
    value = await pool.fetchval(*bind("lease_cancel_requested", **asdict(fence)))
    if value is None:
        raise LeaseLost(f"lease on run {fence.run} attempt {fence.attempt} is gone")
    return bool(value)
