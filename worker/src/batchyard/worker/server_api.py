"""The WorkerService calls the worker makes, with their error and retry rules.

* Every call after LeaseRuns is fenced by (run, attempt, lease id). ``ABORTED`` (reason
  LEASE_LOST) — or ``NOT_FOUND``, the run is gone — raises :class:`LeaseLost`: the caller
  stops the job at once and reports nothing.
* CompleteRun is idempotent, so UNAVAILABLE and DEADLINE_EXCEEDED are retried with
  exponential backoff until the call succeeds or the lease is lost.
* ReleaseRun is retried the same way within a time budget (the worker is shutting down;
  if the server stays away the lease simply expires and the run is leased again).
* AppendLogs is one short client-streaming call per batch; its retries (resending from the
  last acknowledgement) belong to the log shipper (:mod:`batchyard.worker.shipping.shipper`).
* Other errors surface as :class:`grpc.aio.AioRpcError` for the caller to log.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import structlog
from google.protobuf import duration_pb2, timestamp_pb2

from batchyard.client.connection import ClientTls, TlsConfigError, choose_tls, split_target
from batchyard.config import Flag, Kind, SettingsError, Values, switch, text
from batchyard.v1 import (
    result_pb2,
    run_pb2,
    task_pb2,
    worker_control_pb2,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from batchyard.worker.outcome import Outcome

if TYPE_CHECKING:
    from batchyard.v1.worker_service_pb2_grpc import WorkerServiceAsyncStub

_log = structlog.get_logger(__name__)


def _version() -> str:
    try:
        return metadata.version("batchyard-worker")
    except metadata.PackageNotFoundError:
        return ""


_VERSION = _version()

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
LOST = frozenset({grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND})
CALL_TIMEOUT = 10.0
MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a LeaseRuns answer carries payloads and inline code
APPEND_LOGS_METHOD = "/batchyard.v1.WorkerService/AppendLogs"


DEFAULT_SERVER = "localhost:50051"
DEFAULT_LEASE_WAIT = 30.0
DEFAULT_MAX_OUTAGE = 300.0
"""The server's --max-outage default, for a server that does not say."""


def _server(raw: str) -> str:
    server = raw.strip()
    if not server:
        raise ValueError("must not be empty")
    split_target(server)  # an unknown scheme raises (TlsConfigError is a ValueError)
    return server


def _file(raw: str) -> Path:
    path = Path(raw).expanduser().absolute()
    if not path.is_file():
        raise ValueError(f"{raw!r} is not a file")
    return path


_FILE = Kind(_file, str, "FILE")
SERVER = Flag("server", Kind(_server, str, "HOST:PORT"), "server address", default=DEFAULT_SERVER)
TOKEN = Flag("token", text(metavar="TOKEN"), "bearer token for the server", secret=True)
TLS = Flag(
    "tls",
    switch(),
    "connect with TLS (also on with a grpcs:// --server or a TLS file)",
    presence=True,
)
TLS_CA = Flag("tls-ca", _FILE, "PEM CA of the server's certificate", default_text="the system's")
TLS_CERT = Flag("tls-cert", _FILE, "PEM client certificate, for a server that requires one")
TLS_KEY = Flag("tls-key", _FILE, "PEM key of the client certificate")
FLAGS = (SERVER, TOKEN, TLS, TLS_CA, TLS_CERT, TLS_KEY)


@dataclass(frozen=True)
class ServerConnection:
    """How the worker reaches its server."""

    server: str = DEFAULT_SERVER
    token: str | None = field(default=None, repr=False)
    tls: ClientTls | None = None
    """TLS to the server (None: plaintext), with the worker's certificate for mutual TLS."""
    lease_wait: float = DEFAULT_LEASE_WAIT
    """Seconds a LeaseRuns long-poll may wait for work."""

    @classmethod
    def from_values(cls, values: Values) -> ServerConnection:
        """The connection the flags give; the TLS files are read once now, so a wrong one
        fails at start-up."""
        server = values[SERVER]
        files = (values[TLS_CA], values[TLS_CERT], values[TLS_KEY])
        tls = choose_tls(server, values[TLS], *files)[1]
        if tls is not None:
            try:
                tls.credentials()
            except TlsConfigError as exc:
                raise SettingsError(str(exc)) from None
        token = values[TOKEN]
        return cls(server=server, token=token.strip() if token else None, tls=tls)


class LeaseLost(Exception):
    """The server refused a call for this attempt: its lease is gone."""


@dataclass(frozen=True)
class Lease:
    """What fences every call for one leased attempt."""

    run: str
    attempt: int
    lease_id: str


class Backoff:
    """Exponential backoff with jitter: ``initial``, doubled per failure, at most ``maximum``."""

    def __init__(self, initial: float = 0.2, maximum: float = 10.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._failures = 0

    def next(self) -> float:
        delay: float = min(self._maximum, self._initial * 2.0**self._failures)
        self._failures = min(self._failures + 1, 30)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not cryptography)

    def reset(self) -> None:
        self._failures = 0


def status_code(exc: grpc.aio.AioRpcError) -> Any:
    return exc.code()


def channel_options() -> list[tuple[str, int]]:
    """Big messages, and a short reconnect backoff (0.2 s, at most 1 s): gRPC's own grows
    to 2 minutes, which kept workers away from a restarted server for seconds while their
    leases ran out. A worker holds leases: reconnecting each second is worth it."""
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]


@dataclass
class LeaseTerms:
    """What the server said of its leases (LeaseRuns): how long one lasts unrenewed while
    the service is up, and the longest outage of the service it is extended across."""

    ttl: float | None = None
    max_outage: float = DEFAULT_MAX_OUTAGE

    def give_up_after(self, renew_interval: float) -> float:
        """Seconds without any successful renewal after which a worker stops the job
        (self-fencing): by then the server has expired the lease, even across the longest
        outage it makes up for."""
        ttl = self.ttl if self.ttl is not None else 3 * renew_interval
        return ttl + self.max_outage


class WorkerApi:
    """WorkerService for one worker process."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        worker_id: str,
        queues: tuple[str, ...],
        lease_wait: float = 30.0,
        token: str | None = None,
        slots: int = 0,
    ) -> None:
        self._stub: WorkerServiceAsyncStub = worker_service_pb2_grpc.WorkerServiceStub(channel)
        # AppendLogs messages arrive already encoded (shipping.wire): no serializer.
        self._append_logs = channel.stream_unary(
            APPEND_LOGS_METHOD,
            request_serializer=None,
            response_deserializer=worker_service_pb2.AppendLogsResponse.FromString,
        )
        self._worker_id = worker_id
        self._queues = queues
        self._lease_wait = lease_wait
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._slots = slots
        self._started = timestamp_pb2.Timestamp()
        self._started.GetCurrentTime()
        self.terms = LeaseTerms()
        """The lease terms of the server's last LeaseRuns answer."""

    async def lease(self, max_runs: int) -> worker_service_pb2.LeaseRunsResponse:
        """Long-polls for up to ``max_runs`` runs."""
        wait = duration_pb2.Duration()
        wait.FromMilliseconds(int(self._lease_wait * 1000))
        request = worker_service_pb2.LeaseRunsRequest(
            worker_id=self._worker_id,
            queues=self._queues,
            max_runs=max_runs,
            wait=wait,
            host=socket.gethostname()[:200],
            version=_VERSION,
            slots=self._slots,
            slots_busy=max(0, self._slots - max_runs),
            start_time=self._started,
        )
        response: worker_service_pb2.LeaseRunsResponse = await self._stub.LeaseRuns(
            request, timeout=self._lease_wait + 15.0, metadata=self._metadata
        )
        if response.HasField("lease_ttl"):
            self.terms = LeaseTerms(
                ttl=response.lease_ttl.ToTimedelta().total_seconds(),
                max_outage=response.max_outage.ToTimedelta().total_seconds(),
            )
        return response

    async def renew(
        self, lease: Lease, progress: int | None, tasks: task_pb2.TaskSummary | None = None
    ) -> bool:
        """Extends the lease (with the task summary, if it changed); True when a user asked
        to cancel the run."""
        request = worker_service_pb2.RenewLeaseRequest(
            run=lease.run, attempt=lease.attempt, lease_id=lease.lease_id, progress=progress
        )
        if tasks is not None:
            request.tasks.CopyFrom(tasks)
        response: worker_service_pb2.RenewLeaseResponse = await self._fenced(
            self._stub.RenewLease, request
        )
        return response.cancel_requested

    async def complete(
        self,
        lease: Lease,
        outcome: Outcome,
        logs: bytes = b"",
        tasks: task_pb2.TaskSummary | None = None,
    ) -> run_pb2.RunStatus.ValueType:
        """Reports how the attempt ended (retrying while the server is unreachable); returns
        the run's status afterwards (PENDING when the server will retry it). ``logs``: the
        log's last entries as a serialized AppendLogsRequest, stored by the server first.
        The outcome's result files (already in the artifact store) go with it."""
        request = worker_service_pb2.CompleteRunRequest(
            run=lease.run,
            attempt=lease.attempt,
            lease_id=lease.lease_id,
            status=outcome.status,
            reason=outcome.reason,
            exit_code=outcome.exit_code,
            message=outcome.message,
            progress=outcome.progress,
            results=[
                result_pb2.RunResult(
                    name=result.name,
                    size_bytes=result.size,
                    sha256=result.sha256,
                    media_type=result.media_type,
                    attempt=lease.attempt,
                )
                for result in outcome.results
            ],
        )
        usage = outcome.usage
        if usage.peak_memory_bytes is not None:
            request.peak_memory_bytes = usage.peak_memory_bytes
        if usage.cpu_seconds is not None:
            request.cpu_time.FromMicroseconds(round(usage.cpu_seconds * 1e6))
        if logs:
            request.logs.MergeFromString(logs)
        if tasks is not None:
            request.tasks.CopyFrom(tasks)
        backoff = Backoff()
        while True:
            try:
                response: worker_service_pb2.CompleteRunResponse = await self._fenced(
                    self._stub.CompleteRun, request
                )
                return response.run_status
            except grpc.aio.AioRpcError as exc:
                if status_code(exc) not in RETRYABLE:
                    raise
                delay = backoff.next()
                _log.warning("run_complete_retrying", code=status_code(exc).name, retry_in=delay)
                await asyncio.sleep(delay)

    async def release(self, lease: Lease, message: str, budget: float = 10.0) -> None:
        """Hands the run back; retries transient errors for up to ``budget`` seconds."""
        request = worker_service_pb2.ReleaseRunRequest(
            run=lease.run, attempt=lease.attempt, lease_id=lease.lease_id, message=message
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        backoff = Backoff()
        while True:
            try:
                await self._fenced(self._stub.ReleaseRun, request)
                return
            except grpc.aio.AioRpcError as exc:
                delay = backoff.next()
                if status_code(exc) not in RETRYABLE or loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)

    async def append_logs(self, messages: Sequence[bytes], deadline: float) -> int:
        """Sends one AppendLogs call — its messages, each a serialized AppendLogsRequest for
        the same lease — and returns the acknowledged seq: 1..acked_seq are all stored."""
        response: worker_service_pb2.AppendLogsResponse = await self._fenced(
            self._append_logs, iter(messages), deadline=deadline
        )
        return response.acked_seq

    async def wait_for_cancel(self, lease: Lease, wait: float) -> bool:
        """Long-polls up to ``wait`` seconds; True once the run's cancel was requested."""
        request = worker_control_pb2.WaitForCancelRequest(
            run=lease.run, attempt=lease.attempt, lease_id=lease.lease_id
        )
        request.wait.FromMilliseconds(int(wait * 1000))
        response: worker_control_pb2.WaitForCancelResponse = await self._fenced(
            self._stub.WaitForCancel, request, deadline=wait + CALL_TIMEOUT
        )
        return response.cancel_requested

    async def _fenced(self, method: Any, request: Any, deadline: float = CALL_TIMEOUT) -> Any:
        try:
            return await method(request, timeout=deadline, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            if status_code(exc) in LOST:
                raise LeaseLost(f"{status_code(exc).name}: {exc.details()}") from exc
            raise
