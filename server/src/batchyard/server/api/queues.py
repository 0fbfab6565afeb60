"""QueueService: create, read (with each queue's numbers), list, update, delete."""

from __future__ import annotations

from typing import Any

import grpc

from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import current_principal
from batchyard.server.api.job_convert import duration, timestamp
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db import queues as store
from batchyard.server.db.pool import Pool
from batchyard.server.db.wakeups import Wakeups, queue_settings_key
from batchyard.server.domain import paging
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.queues import (
    Queue,
    QueueDraft,
    QueueState,
    apply_update,
    name_violations,
    validate,
)
from batchyard.v1 import queue_pb2, queue_service_pb2_grpc
from batchyard.v1 import queue_service_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]


def state_from_pb(value: int) -> QueueState | None:
    if value == queue_pb2.QUEUE_STATE_UNSPECIFIED:
        return QueueState.ENABLED
    if value not in queue_pb2.QueueState.values():
        return None
    return QueueState(queue_pb2.QueueState.Name(value).removeprefix("QUEUE_STATE_"))  # type: ignore[arg-type]


def draft_from_pb(queue: queue_pb2.Queue) -> QueueDraft:
    return QueueDraft(
        name=queue.name,
        description=queue.description,
        priority=queue.priority,
        state=state_from_pb(queue.state),
        concurrency_limit=queue.concurrency_limit or None,
    )


def queue_to_pb(queue: Queue) -> queue_pb2.Queue:
    draft, stats = queue.draft, queue.stats
    state = draft.state or QueueState.ENABLED
    return queue_pb2.Queue(
        name=draft.name,
        workspace=queue.workspace,
        description=draft.description,
        priority=draft.priority,
        state=queue_pb2.QueueState.Value(f"QUEUE_STATE_{state.value}"),
        concurrency_limit=draft.concurrency_limit or 0,
        create_time=timestamp(queue.create_time),
        update_time=timestamp(queue.update_time),
        stats=queue_pb2.QueueStats(
            pending=stats.pending,
            running=stats.running,
            oldest_pending_age=duration(stats.age_seconds)
            if stats.age_seconds is not None
            else None,
            paused=state == QueueState.PAUSED,
            concurrency_limit=draft.concurrency_limit or 0,
        ),
    )


def _require_name(name: str) -> str:
    violations = name_violations(name, "queue")
    if violations:
        raise InvalidArgument(violations)
    return name


class QueueServicer(queue_service_pb2_grpc.QueueServiceServicer):
    def __init__(
        self, pool: Pool, workspaces: WorkspaceResolver, wakeups: Wakeups, audit: AuditLog
    ) -> None:
        self._pool = pool
        self._workspaces = workspaces
        self._wakeups = wakeups
        self._audit = audit

    async def CreateQueue(
        self, request: pb.CreateQueueRequest, context: Context
    ) -> pb.CreateQueueResponse:
        ws = await self._workspaces.of(context)
        if not request.HasField("queue"):
            raise InvalidArgument([FieldViolation("queue", "required")])
        draft = draft_from_pb(request.queue)
        violations = validate(draft)
        if violations:
            raise InvalidArgument([v.under("queue") for v in violations])
        created = await store.create(self._pool, ws, draft)
        self._audit.record(current_principal(), "queue.create", "queue", draft.name)
        return pb.CreateQueueResponse(queue=queue_to_pb(created))

    async def GetQueue(self, request: pb.GetQueueRequest, context: Context) -> pb.GetQueueResponse:
        ws = await self._workspaces.of(context)
        found = await store.get(self._pool, ws, _require_name(request.queue))
        return pb.GetQueueResponse(queue=queue_to_pb(found))

    async def ListQueues(
        self, request: pb.ListQueuesRequest, context: Context
    ) -> pb.ListQueuesResponse:
        ws = await self._workspaces.of(context)
        size = paging.page_size(request.page_size)
        key = paging.decode(request.page_token, {})
        after = str(key[0]) if key else None
        page = await store.list_page(self._pool, ws, after, size + 1)
        token = ""
        if len(page) > size:
            page = page[:size]
            token = paging.encode([page[-1].draft.name], {})
        return pb.ListQueuesResponse(queues=[queue_to_pb(x) for x in page], next_page_token=token)

    async def UpdateQueue(
        self, request: pb.UpdateQueueRequest, context: Context
    ) -> pb.UpdateQueueResponse:
        ws = await self._workspaces.of(context)
        name = _require_name(request.queue)
        changes = draft_from_pb(request.changes)
        paths = list(request.update_mask.paths)
        await store.update(self._pool, ws, name, lambda now: apply_update(now, changes, paths))
        # Held runs are released at once (lease long-polls look again) and watchers of
        # the queue's pending runs learn the new reason they wait (or not).
        self._wakeups.poke([name, queue_settings_key(name)])
        self._audit.record(
            current_principal(), "queue.update", "queue", name, ", ".join(sorted(paths))
        )
        return pb.UpdateQueueResponse(queue=queue_to_pb(await store.get(self._pool, ws, name)))

    async def DeleteQueue(
        self, request: pb.DeleteQueueRequest, context: Context
    ) -> pb.DeleteQueueResponse:
        ws = await self._workspaces.of(context)
        name = _require_name(request.queue)
        await store.delete(self._pool, ws, name)
        self._audit.record(current_principal(), "queue.delete", "queue", name)
        return pb.DeleteQueueResponse()
