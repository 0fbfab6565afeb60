"""`client.queues` of the synchronous face: the queues of the caller's workspace."""

from __future__ import annotations

from typing import Any

from batchyard.client.core.part import Part
from batchyard.client.core.requests import list_queues, queue_message, update_queue_request
from batchyard.client.sync.call import Caller
from batchyard.client.sync.paging import Paged, listing
from batchyard.v1 import queue_pb2, queue_service_pb2_grpc
from batchyard.v1 import queue_service_pb2 as qpb


class Queues(Part[queue_service_pb2_grpc.QueueServiceStub, Caller]):
    """`client.queues`: create, read, change, pause, resume and delete queues. Each
    queue read carries `stats` (pending, running, oldest pending age, paused, limit)."""

    def create(
        self,
        name: str,
        *,
        description: str = "",
        priority: int = 0,
        paused: bool = False,
        concurrency_limit: int | None = None,
    ) -> queue_pb2.Queue:
        """A new queue (QueueExistsError if the name is taken). A worker serving several
        queues leases from the higher `priority` first; at most `concurrency_limit` of
        its runs run at once (None: no limit)."""
        queue = queue_message(
            name,
            description=description,
            priority=priority,
            paused=paused,
            concurrency_limit=concurrency_limit,
        )
        return self._call(self._stub.CreateQueue, qpb.CreateQueueRequest(queue=queue)).queue

    def get(self, name: str) -> queue_pb2.Queue:
        """The queue with its numbers now (QueueNotFoundError if none)."""
        return self._call(self._stub.GetQueue, qpb.GetQueueRequest(queue=name)).queue

    def list(self, *, limit: int | None = None, page_size: int = 0) -> Paged[queue_pb2.Queue]:
        """The queues, by name, each with its numbers."""
        return listing(
            self._call, self._stub.ListQueues, list_queues(), limit=limit, page_size=page_size
        )

    def update(self, name: str, **changes: Any) -> queue_pb2.Queue:
        """Change `description`, `priority`, `paused` or `concurrency_limit` (None or 0:
        no limit); only the fields given change."""
        return self._call(self._stub.UpdateQueue, update_queue_request(name, **changes)).queue

    def pause(self, name: str) -> queue_pb2.Queue:
        """Hold the queue's pending runs (submissions are still accepted; running
        attempts go on)."""
        return self.update(name, paused=True)

    def resume(self, name: str) -> queue_pb2.Queue:
        """Release the queue's held runs at once."""
        return self.update(name, paused=False)

    def delete(self, name: str) -> None:
        """Delete the queue (WrongStateError for `default`, a queue with unfinished runs
        or one a definition names)."""
        self._call(self._stub.DeleteQueue, qpb.DeleteQueueRequest(queue=name))
