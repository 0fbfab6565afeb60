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
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

from batchyard.server.api.access import AuditServicer, TokenServicer, WorkspaceServicer
from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import Authenticator, check_coverage
from batchyard.server.api.budgets import Budgets
from batchyard.server.api.definitions import DefinitionServicer
from batchyard.server.api.instrument import instrument
from batchyard.server.api.logs import LogServicer
from batchyard.server.api.results import ResultReader
from batchyard.server.api.runs import RunServicer
from batchyard.server.api.wire import add_service
from batchyard.server.api.workers import LeaseSettings, WorkerServicer
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db.access import count_tokens
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.migrate import migrate
from batchyard.server.db.pool import create_pool
from batchyard.server.db.run_batcher import SubmitBatcher
from batchyard.server.db.wakeups import Wakeups
from batchyard.server.domain.sql_targets import identity_of
from batchyard.server.embedded import EmbeddedPostgres, start_embedded
from batchyard.server.limits import Kind
from batchyard.server.maintenance.rescuer import Rescuer
from batchyard.server.secret_keys import load_key_ring
from batchyard.server.settings import ServerSettings
from batchyard.server.tls import add_port, check_listen
from batchyard.v1 import (
    access_service_pb2,
    definition_service_pb2,
    log_service_pb2,
    run_service_pb2,
    worker_service_pb2,
)

log = structlog.get_logger(__name__)

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


def _descriptor(module: Any, name: str) -> ServiceDescriptor:
    service: ServiceDescriptor = module.DESCRIPTOR.services_by_name[name]
    return service


async def resolve_database(settings: ServerSettings) -> tuple[str, EmbeddedPostgres | None]:
    """The DSN to use, starting the embedded PostgreSQL when no URL is configured."""
    if settings.database_url:
        return settings.database_url, None
    embedded = await start_embedded(settings.data_dir)
    return embedded.dsn(), embedded


async def run_migrations(dsn: str, box: SecretBox | None = None) -> list[int]:
    """Apply pending migrations; `box` seals secrets stored before they were sealed."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, box)
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
    budgets: Budgets | None = None
    """The concurrency budgets, with the calls they hold now (set by start())."""

    @property
    def embedded(self) -> EmbeddedPostgres | None:
        """The embedded PostgreSQL this server started (None on an external database)."""
        return self._embedded

    async def start(self) -> None:
        check_listen(self.settings.listen, self.settings.tls, self.settings.insecure)
        box = SecretBox(load_key_ring(self.settings))
        dsn, self._embedded = await resolve_database(self.settings)
        self.dsn = dsn
        try:
            await run_migrations(dsn, box)
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
            self._server = self._build_server(self._pool, self._wakeups, box)
            self.port = add_port(
                self._server, self.settings.listen, self.settings.tls, self.settings.insecure
            )
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
            tls=_describe_tls(self.settings),
            artifacts=self.settings.artifacts.describe(),
        )

    def _build_server(
        self, pool: asyncpg.Pool, wakeups: Wakeups, box: SecretBox
    ) -> grpc.aio.Server:
        limits = self.settings.limits
        server = grpc.aio.server(
            options=[*limits.grpc_options(), ("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=limits.grpc_concurrency(),
        )
        budgets = self.budgets = Budgets(limits.budgets())
        self._audit = AuditLog(pool)
        self._audit.start()
        authenticator = Authenticator(pool, self._audit)
        workspaces = WorkspaceResolver()
        service_db = identity_of(self.dsn)  # SQL jobs may not name it
        definitions = DefinitionServicer(pool, box, workspaces, self._audit, service_db)
        self._results = ResultReader(pool, workspaces, self.settings.artifacts.open())
        runs = RunServicer(
            pool,
            box,
            workspaces,
            wakeups,
            SubmitBatcher(pool, box),
            self._results,
            self._audit,
            service_db,
        )
        lease_settings = LeaseSettings(ttl_seconds=self.settings.lease_ttl_seconds)
        workers = WorkerServicer(pool, box, wakeups, lease_settings)
        logs = LogServicer(pool, workspaces, wakeups)
        tokens = TokenServicer(pool, self._audit, authenticator)
        workspace_service = WorkspaceServicer(pool, self._audit)
        audit = AuditServicer(pool, self._audit)
        served = (
            (definitions, definition_service_pb2),
            (runs, run_service_pb2),
            (workers, worker_service_pb2),
            (logs, log_service_pb2),
            (tokens, access_service_pb2),
            (workspace_service, access_service_pb2),
            (audit, access_service_pb2),
        )
        check_coverage([_service_of(servicer, module) for servicer, module in served])
        for servicer, module in served:
            service = _service_of(servicer, module)
            instrument(servicer, service, authenticator, budgets)
            add_service(server, servicer, service)
        probes = budgets[Kind.PROBES]
        health = _descriptor(health_pb2, "Health")
        add_service(server, self._health, health, probe_budget=probes)
        if self.settings.reflection:
            names = [*SERVICES, health.full_name, reflection.SERVICE_NAME]
            info = _descriptor(reflection_pb2, "ServerReflection")
            add_service(server, ReflectionServicer(names), info, probe_budget=probes)
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


def _describe_tls(settings: ServerSettings) -> str:
    if settings.tls is None:
        return "off"
    return "mutual" if settings.tls.client_ca is not None else "on"


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
