"""The stop requests one attempt receives (timeout aside): a user's cancel, the lease lost,
the worker shutting down; and running a piece of work unless one arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from batchyard.worker.outcome import StopReason

_T = TypeVar("_T")


class Stops:
    """The first reason wins; a lost lease always kills at once; a lost lease or a shutdown
    abandons the attempt (it will not be completed, its results are not stored)."""

    def __init__(self) -> None:
        self.reason: StopReason | None = None
        self.requested = asyncio.Event()
        self.kill_now = asyncio.Event()
        """Set on LEASE_LOST: no grace between SIGTERM and SIGKILL."""
        self.abandoned: StopReason | None = None
        """LEASE_LOST or SHUTDOWN, once either arrived."""
        self.abandon = asyncio.Event()

    def stop(self, reason: StopReason) -> None:
        if self.reason is None:
            self.reason = reason
            self.requested.set()
        if reason is StopReason.LEASE_LOST:
            self.kill_now.set()
        if reason in (StopReason.LEASE_LOST, StopReason.SHUTDOWN) and self.abandoned is None:
            self.abandoned = reason
            self.abandon.set()


async def unless(event: asyncio.Event, work: Coroutine[Any, Any, _T]) -> asyncio.Future[_T]:
    """Runs ``work`` until it ends or ``event`` is set, when it is cancelled and waited for
    (nothing of it may go on in a directory being emptied); returns its future."""
    task = asyncio.ensure_future(work)
    event_set = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((task, event_set), return_when=asyncio.FIRST_COMPLETED)
    finally:
        event_set.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
    return task
