"""The audit trail's writer: events are buffered briefly and stored in one INSERT.

A call records its event and goes on; a background task stores what gathered every
FLUSH_SECONDS (one statement for many events, so SubmitRun keeps its throughput). On a
graceful stop everything is stored; a crash (kill -9) can lose the last FLUSH_SECONDS.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import structlog

from batchyard.server.db import access as store
from batchyard.server.db.pool import Pool
from batchyard.server.domain.access import Principal

FLUSH_SECONDS = 0.05
MAX_DETAIL = 500
log = structlog.get_logger("batchyard.server.audit")


class AuditLog:
    """A service (lifecycle.py): `run` stores what gathered, `stop` stores the rest."""

    name = "audit-writer"

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._pending: list[store.AuditEvent] = []
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()

    async def start(self) -> None:
        pass

    def record(
        self,
        principal: Principal,
        action: str,
        object_kind: str,
        object_id: object,
        detail: str = "",
    ) -> None:
        """Notes who did `action` to which object (never pass a secret in `detail`)."""
        workspace, actor = principal.workspace_id, principal.actor
        self.record_in(workspace, actor, action, object_kind, object_id, detail)

    def record_in(
        self,
        workspace_id: UUID,
        actor: str,
        action: str,
        object_kind: str,
        object_id: object,
        detail: str = "",
    ) -> None:
        self._pending.append(
            store.AuditEvent(
                workspace_id=workspace_id,
                at=datetime.now(UTC),
                actor=actor,
                action=action,
                object_kind=object_kind,
                object_id=str(object_id),
                detail=detail[:MAX_DETAIL],
            )
        )
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_SECONDS)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Store what was recorded so far. A flush under way is waited for first, so once
        this returns every event recorded before it is readable (ListAuditEvents)."""
        async with self._flushing:
            events, self._pending = self._pending, []
            if not events:
                return
            try:
                await store.insert_audit_events(self._pool, events)
            except Exception as exc:  # keep them for the next flush
                self._pending[:0] = events
                log.warning("audit_flush_failed", events=len(events), error=repr(exc))

    async def stop(self) -> None:
        await self.flush()
