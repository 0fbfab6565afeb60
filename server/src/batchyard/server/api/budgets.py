"""Concurrency budgets: how many calls of each kind the server serves at once.

grpc's own `maximum_concurrent_rpcs` counts every call alike, so a crowd of followers
(TailLogs, WatchRun, DownloadRunResult: open for minutes or hours) or of workers' LeaseRuns
long-polls could take every slot and starve the short calls. Each kind gets its own budget
here; a call over its budget is refused at once with RESOURCE_EXHAUSTED (ErrorInfo reason
CONCURRENCY_LIMIT, with RetryInfo), and grpc's limit is kept above their sum as a backstop.
A slot is given back when the call ends, however it ends (the call's done callback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import code_pb2, error_details_pb2, status_pb2

from batchyard.server.api.errors import DOMAIN
from batchyard.server.limits import Kind

RETRY_AFTER_SECONDS = 1
LONG_POLLS = frozenset(
    {"batchyard.v1.WorkerService/LeaseRuns", "batchyard.v1.WorkerService/WaitForCancel"}
)
"""Unary methods that wait for work: they hold their slot like a stream does."""


def kind_of(method: MethodDescriptor) -> Kind:
    """The budget a method's calls count against."""
    if f"{method.containing_service.full_name}/{method.name}" in LONG_POLLS:
        return Kind.LEASE_POLLS
    return Kind.STREAMS if method.server_streaming else Kind.CALLS


class Refused(Exception):
    """A call refused before it ran, with the status to answer."""

    def __init__(self, code: grpc.StatusCode, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.code = code
        self.status = status


@dataclass
class Budget:
    """At most `limit` calls of one kind at once (the server's event loop is the only
    user: a plain counter)."""

    kind: Kind
    limit: int
    in_use: int = 0

    def enter(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Take a slot until the call ends; raises Refused when none is free."""
        if self.in_use >= self.limit:
            raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, self._full_status())
        self.in_use += 1
        context.add_done_callback(self._leave)  # type: ignore[arg-type]  # any callable does

    def _leave(self, _context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.in_use -= 1

    def _full_status(self) -> status_pb2.Status:
        message = (
            f"the server is serving its maximum of {self.limit} concurrent "
            f"{self.kind.value.replace('_', ' ')}; retry later"
        )
        info = error_details_pb2.ErrorInfo(
            reason="CONCURRENCY_LIMIT",
            domain=DOMAIN,
            metadata={"budget": self.kind.value, "limit": str(self.limit)},
        )
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_SECONDS)
        )
        details = []
        for detail in (info, retry):
            holder = any_pb2.Any()
            holder.Pack(detail)
            details.append(holder)
        return status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=details)


class Budgets:
    """One budget per kind of call."""

    def __init__(self, limits: dict[Kind, int]) -> None:
        self._budgets = {kind: Budget(kind, limit) for kind, limit in limits.items()}

    def __getitem__(self, kind: Kind) -> Budget:
        return self._budgets[kind]

    def for_method(self, method: MethodDescriptor) -> Budget:
        return self._budgets[kind_of(method)]
