"""The composition root: wires the database, the servicers and the gRPC server, and owns
start-up and graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import structlog
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from batchyard.server.api.access import AuditServicer, TokenServicer, WorkspaceServicer
from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import Authenticator, check_coverage
from batchyard.server.api.definitions import DefinitionServicer
from batchyard.server.api.instrument import instrument
from batchyard.server.api.logs import LogServicer
from batchyard.server.api.results import ResultReader
from batchyard.server.api.runs import RunServicer
from batchyard.server.api.workers import LeaseSettings, WorkerServicer
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db.access import count_tokens
from batchyard.server.db.migrate import migrate
from batchyard.server.db.pool import create_pool
from batchyard.server.db.run_batcher import SubmitBatcher
from batchyard.server.db.wakeups import Wakeups
from batchyard.server.embedded import EmbeddedPostgres, start_embedded
from batchyard.server.maintenance.rescuer import Rescuer
from batchyard.server.settings import ServerSettings
from batchyard.v1 import (
    access_service_pb2,
    access_service_pb2_grpc,
    definition_service_pb2,
    definition_service_pb2_grpc,
    log_service_pb2,
    log_service_pb2_grpc,
    run_service_pb2,
    run_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
SERVICES = [
    definition_service_pb2.DESCRIPTOR.services_by_name["DefinitionService"].full_name,
    run_service_pb2.DESCRIPTOR.services_by_name["RunService"].full_name,
    worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
    log_service_pb2.DESCRIPTOR.services_by_name["LogService"].full_name,
    *(s.full_name for s in access_service_pb2.DESCRIPTOR.services_by_name.values()),
]


def _service_of(servicer: object, module: Any) -> ServiceDescriptor:
    """The service a servicer implements (its generated base class is named after it)."""
    for cls in type(servicer).__mro__:
        name = cls.__name__.removesuffix("Servicer")
        services = module.DESCRIPTOR.services_by_name
        if cls.__module__.startswith("batchyard.v1.") and name in services:
            service: ServiceDescriptor = services[name]
            return service
    raise TypeError(f"{type(servicer).__name__} implements no service of {module.__name__}")


async def resolve_database(settings: ServerSettings) -> tuple[str, EmbeddedPostgres | None]:
    """The DSN to use, starting the embedded PostgreSQL when no URL is configured."""
    if settings.database_url:
        return settings.database_url, None
    embedded = await start_embedded(settings.data_dir)
    return embedded.dsn(), embedded


async def run_migrations(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


@dataclass
class App:
    settings: ServerSettings
    port: int = 0
    dsn: str = ""
    """The database the server uses (set by start())."""
    _server: grpc.aio.Server | None = None
    _pool: asyncpg.Pool | None = None
    _embedded: EmbeddedPostgres | None = None
    _wakeups: Wakeups | None = None
    rescuer: Rescuer | None = None
    _results: ResultReader | None = None
    _audit: AuditLog | None = None
    _health: HealthServicer = field(default_factory=HealthServicer)
    _stopped: bool = False

    async def start(self) -> None:
        dsn, self._embedded = await resolve_database(self.settings)
        self.dsn = dsn
        try:
            await run_migrations(dsn)
            self._pool = await create_pool(dsn, max_size=self.settings.pool_size)
            if await count_tokens(self._pool) == 0:
                log.warning(
                    "no_api_tokens",
                    hint="every call needs a token: create the first admin token with "
                    "`batchyard server bootstrap` (same database flags)",
                )
            self._wakeups = Wakeups(self._pool, dsn)
            await self._wakeups.start()
            self.rescuer = Rescuer(self._pool, self._wakeups, self.settings.rescue_interval_seconds)
            self.rescuer.start()
            self._server = self._build_server(self._pool, self._wakeups)
            self.port = self._server.add_insecure_port(self.settings.listen)
            if self.port == 0:
                raise OSError(f"cannot listen on {self.settings.listen}")
            await self._server.start()
        except BaseException:
            await self.stop(0)
            raise
        for name in ["", *SERVICES]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "server_started",
            listen=self.settings.listen,
            port=self.port,
            artifacts=self.settings.artifacts.describe(),
        )

    def _build_server(self, pool: asyncpg.Pool, wakeups: Wakeups) -> grpc.aio.Server:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        self._audit = AuditLog(pool)
        self._audit.start()
        authenticator = Authenticator(pool, self._audit)
        workspaces = WorkspaceResolver()
        definitions = DefinitionServicer(pool, workspaces, self._audit)
        self._results = ResultReader(pool, workspaces, self.settings.artifacts.open())
        runs = RunServicer(
            pool, workspaces, wakeups, SubmitBatcher(pool), self._results, self._audit
        )
        lease_settings = LeaseSettings(ttl_seconds=self.settings.lease_ttl_seconds)
        workers = WorkerServicer(pool, wakeups, lease_settings)
        logs = LogServicer(pool, workspaces, wakeups)
        tokens = TokenServicer(pool, self._audit, authenticator)
        workspace_service = WorkspaceServicer(pool, self._audit)
        audit = AuditServicer(pool, self._audit)
        served = (
            (definitions, definition_service_pb2, definition_service_pb2_grpc),
            (runs, run_service_pb2, run_service_pb2_grpc),
            (workers, worker_service_pb2, worker_service_pb2_grpc),
            (logs, log_service_pb2, log_service_pb2_grpc),
            (tokens, access_service_pb2, access_service_pb2_grpc),
            (workspace_service, access_service_pb2, access_service_pb2_grpc),
            (audit, access_service_pb2, access_service_pb2_grpc),
        )
        check_coverage([_service_of(servicer, module) for servicer, module, _ in served])
        for servicer, module, grpc_module in served:
            service = _service_of(servicer, module)
            instrument(servicer, service, authenticator)
            getattr(grpc_module, f"add_{service.name}Servicer_to_server")(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [
                *SERVICES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        return server

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, stop accepting, drain in-flight calls, close the database."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.grace_seconds if grace is None else grace
        await self._health.enter_graceful_shutdown()
        if self._server is not None:
            log.info("server_draining", grace_seconds=grace)
            await self._server.stop(grace)
        if self.rescuer is not None:
            await self.rescuer.stop()
        if self._results is not None:
            await self._results.aclose()
        if self._audit is not None:
            await self._audit.aclose()
        if self._wakeups is not None:
            await self._wakeups.stop()
        if self._pool is not None:
            await self._pool.close()
        if self._embedded is not None:
            await self._embedded.stop()
        log.info("server_stopped")


async def serve(settings: ServerSettings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    app = App(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        await stop.wait()
        log.info("shutdown_requested")
    finally:
        await app.stop()
