"""Wake-ups for the lease long-polls: in-process at once, other replicas via NOTIFY.

LISTEN/NOTIFY is only a hint. Long-polls also re-check on a short interval, so a lost
notification (listener reconnecting, NOTIFY in a rolled-back transaction) costs latency,
never a run. NOTIFYs are coalesced (one statement per short interval for all the queues
that were poked) because NOTIFY serialises commits on a global lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Iterator
from uuid import UUID

import asyncpg
import structlog

from batchyard.server.db.runs import notify_queues
from batchyard.server.domain.errors import Unavailable
from batchyard.server.domain.runs import RunStatus

log = structlog.get_logger(__name__)

CHANNEL = "batchyard_runs"
COALESCE_SECONDS = 0.002
RECONNECT_SECONDS = 1.0
DRAINING = "the server is shutting down; reconnect (to it once it is back, or to another replica)"


def run_key(run: object) -> str:
    """The wake-up key of one run's changes (its state or its log). Queue names cannot
    start with "@", so run keys and queue keys never collide."""
    return f"@{run}"


def cancel_key(run: object) -> str:
    """The wake-up key of a cancel request for one run (its worker's WaitForCancel);
    distinct from `run_key`, so a chatty job's log batches do not wake it."""
    return f"@cancel:{run}"


def queue_settings_key(queue: str) -> str:
    """The wake-up key of a change to a queue's settings (state, limit): what watchers of
    its pending runs wait on. Queue names cannot start with "%" either."""
    return f"%{queue}"


class Wakeups:
    """A service (lifecycle.py): `run` is the LISTEN loop, `stop` closes its connection."""

    name = "wakeups"

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self._id = uuid.uuid4().hex[:12]
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._pending: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._closed = False
        self._draining = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def drain(self) -> None:
        """The server is stopping: every long call waiting here (log followers, watchers,
        long-polls) wakes now and ends with UNAVAILABLE when it would wait again, so its
        client reconnects at once instead of holding the shutdown for the whole grace."""
        self._draining = True
        self._wake_local(list(self._waiters))

    @contextlib.contextmanager
    def waiter(self, queues: list[str], *, background: bool = False) -> Iterator[asyncio.Event]:
        """An event set when any of `queues` (or runs: `run_key`) may have news. Register
        before you look. Raises Unavailable once the server is draining, unless the waiter
        is a `background` service's (the supervisor stops those itself)."""
        if self._draining and not background:
            raise Unavailable(DRAINING)
        event = asyncio.Event()
        for queue in queues:
            self._waiters[queue].add(event)
        try:
            yield event
        finally:
            for queue in queues:
                self._waiters[queue].discard(event)
                if not self._waiters[queue]:
                    del self._waiters[queue]

    def poke(self, queues: set[str] | list[str]) -> None:
        """Work arrived in `queues` (or runs changed): wake local waiters now, other
        replicas soon."""
        self._wake_local(queues)
        self._pending.update(queues)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="wakeups-notify")

    def poke_ended(self, run: UUID, status: RunStatus, queue: str) -> None:
        """An attempt of `run` ended: its watchers look again, and its queue's workers too
        when it is leasable again."""
        self.poke([run_key(run), queue] if status == RunStatus.PENDING else [run_key(run)])

    def _wake_local(self, queues: set[str] | list[str]) -> None:
        for queue in queues:
            for event in self._waiters.get(queue, ()):
                event.set()

    async def _flush(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        while self._pending and not self._closed:
            queues, self._pending = sorted(self._pending), set()
            try:
                await notify_queues(self._pool, self._id, queues)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("notify_failed", error=type(exc).__name__)
                return

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        sender, _, queue = payload.partition(":")
        if sender != self._id:
            self._wake_local([queue])

    async def run(self) -> None:
        """LISTEN, reconnecting whenever the connection is lost."""
        while not self._closed:
            try:
                self._conn = await asyncpg.connect(self._dsn)
                lost = asyncio.Event()
                self._conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await self._conn.add_listener(CHANNEL, self._on_notify)
                # Whatever was notified while we were away: look again everywhere.
                self._wake_local(list(self._waiters))
                await lost.wait()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("listen_connection_lost", error=type(exc).__name__)
            await asyncio.sleep(RECONNECT_SECONDS)
