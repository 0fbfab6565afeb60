"""`client.queues` of the asyncio face: `batchyard.client.sync.queues`, awaited."""

from __future__ import annotations

from typing import Any

from batchyard.client.aio.call import AsyncCaller
from batchyard.client.aio.paging import AsyncPaged, alisting
from batchyard.client.core.part import Part
from batchyard.client.core.requests import list_queues, queue_message, update_queue_request
from batchyard.v1 import (
    queue_pb2,
    queue_service_pb2_grpc,  # noqa: F401 (its Async stub, quoted below: typing only)
)
from batchyard.v1 import queue_service_pb2 as qpb


class AsyncQueues(Part["queue_service_pb2_grpc.QueueServiceAsyncStub", AsyncCaller]):
    """`client.queues` of the asyncio client (see `Queues`)."""

    async def create(
        self,
        name: str,
        *,
        description: str = "",
        priority: int = 0,
        paused: bool = False,
        concurrency_limit: int | None = None,
    ) -> queue_pb2.Queue:
        """A new queue (QueueExistsError if the name is taken)."""
        queue = queue_message(
            name,
            description=description,
            priority=priority,
            paused=paused,
            concurrency_limit=concurrency_limit,
        )
        reply = await self._call(self._stub.CreateQueue, qpb.CreateQueueRequest(queue=queue))
        return reply.queue

    async def get(self, name: str) -> queue_pb2.Queue:
        """The queue with its numbers now (QueueNotFoundError if none)."""
        return (await self._call(self._stub.GetQueue, qpb.GetQueueRequest(queue=name))).queue

    def list(self, *, limit: int | None = None, page_size: int = 0) -> AsyncPaged[queue_pb2.Queue]:
        """The queues, by name, each with its numbers."""
        return alisting(
            self._call, self._stub.ListQueues, list_queues(), limit=limit, page_size=page_size
        )

    async def update(self, name: str, **changes: Any) -> queue_pb2.Queue:
        """Change `description`, `priority`, `paused` or `concurrency_limit`."""
        request = update_queue_request(name, **changes)
        return (await self._call(self._stub.UpdateQueue, request)).queue

    async def pause(self, name: str) -> queue_pb2.Queue:
        """Hold the queue's pending runs."""
        return await self.update(name, paused=True)

    async def resume(self, name: str) -> queue_pb2.Queue:
        """Release the queue's held runs at once."""
        return await self.update(name, paused=False)

    async def delete(self, name: str) -> None:
        """Delete the queue."""
        await self._call(self._stub.DeleteQueue, qpb.DeleteQueueRequest(queue=name))
