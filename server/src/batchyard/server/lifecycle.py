"""One owner for the server's background services: started in order, watched while they
run, stopped in reverse.

A service has a name, `start()` (ready to be used when it returns) and `stop()` (finish
what it holds: flush, close, wait for its own tasks). A service with a loop also has
`run()`, which the supervisor runs as a task and watches: a loop that raises is logged
(`service_failed`) and, by its policy, either restarted after a backoff that doubles up
to a cap (`RESTART`) or ends the server (`FATAL`: the supervisor calls `on_fatal`, which
starts a graceful shutdown). A loop is never silently gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

import structlog

log = structlog.get_logger(__name__)

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


class Policy(Enum):
    RESTART = "restart"
    """A crashed loop runs again after a backoff."""
    FATAL = "fatal"
    """A crashed loop ends the server."""


class Service(Protocol):
    """A background part of the server that the composition root starts and stops."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Looping(Protocol):
    """A service whose work is a loop the supervisor runs and watches."""

    async def run(self) -> None:
        """Runs until cancelled; raising is a crash."""
        ...


@dataclass
class _Entry:
    service: Service
    policy: Policy
    task: asyncio.Task[None] | None = None
    crashes: int = 0


STOP_SECONDS = 10.0
"""How long stop() waits for one service's loop to end after its cancel, and then for
its stop()."""


@dataclass
class Supervisor:
    on_fatal: Callable[[str], None]
    """Called (once per crash) with the name of a FATAL service whose loop crashed."""
    first_backoff: float = FIRST_BACKOFF_SECONDS
    max_backoff: float = MAX_BACKOFF_SECONDS
    _entries: list[_Entry] = field(default_factory=list)
    _stopping: bool = False

    async def start(self, service: Service, policy: Policy = Policy.RESTART) -> None:
        """Start `service` (after those started before it) and watch its loop."""
        entry = _Entry(service, policy)
        await service.start()
        self._entries.append(entry)
        if isinstance(service, Looping):
            entry.task = asyncio.create_task(self._watch(entry), name=service.name)
        log.debug("service_started", service=service.name, policy=policy.value)

    def crashes(self, name: str) -> int:
        """How often the loop of the service `name` crashed."""
        return sum(e.crashes for e in self._entries if e.service.name == name)

    async def stop(self) -> None:
        """Stop every service in reverse order of start: its loop first, then the
        service itself. A service that fails to stop is logged; the others still stop."""
        self._stopping = True
        while self._entries:
            entry = self._entries.pop()
            if entry.task is not None:
                entry.task.cancel()
                # a cancel of stop() itself still propagates; a loop that ignores its
                # cancel is reported and left behind rather than holding the shutdown
                _, pending = await asyncio.wait([entry.task], timeout=STOP_SECONDS)
                if pending:
                    log.error("service_did_not_stop", service=entry.service.name)
            try:
                await asyncio.wait_for(entry.service.stop(), STOP_SECONDS)
            except Exception as exc:  # boundary: the others must still stop
                log.error("service_stop_failed", service=entry.service.name, exc_info=exc)

    async def _watch(self, entry: _Entry) -> None:
        service = entry.service
        assert isinstance(service, Looping)
        loop = asyncio.get_running_loop()
        backoff = self.first_backoff
        while True:
            began = loop.time()
            try:
                await service.run()
                raise RuntimeError("the loop returned")  # loops run until cancelled
            except Exception as exc:  # boundary: a crashed loop is reported, never lost
                entry.crashes += 1
                log.error(
                    "service_failed", service=service.name, policy=entry.policy.value, exc_info=exc
                )
            if entry.policy is Policy.FATAL:
                if not self._stopping:
                    self.on_fatal(service.name)
                return
            if loop.time() - began > self.max_backoff:  # it ran a good while: start over
                backoff = self.first_backoff
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
