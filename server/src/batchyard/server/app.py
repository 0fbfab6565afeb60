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
from batchyard.server.api.fleet import FleetServicer
from batchyard.server.api.instrument import instrument
from batchyard.server.api.logs import LogServicer
from batchyard.server.api.queues import QueueServicer
from batchyard.server.api.results import ResultReader
from batchyard.server.api.retention import RetentionServicer
from batchyard.server.api.runs import RunServicer
from batchyard.server.api.schedule_runs import ScheduledRuns
from batchyard.server.api.schedules import ScheduleServicer
from batchyard.server.api.wire import add_service
from batchyard.server.api.workers import LeaseSettings, WorkerServicer
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db.access import count_tokens
from batchyard.server.db.definition_reader import DefinitionReader
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.migrate import migrate
from batchyard.server.db.pool import create_pool
from batchyard.server.db.run_batcher import SubmitBatcher
from batchyard.server.db.wakeups import Wakeups
from batchyard.server.domain.sql_targets import identity_of
from batchyard.server.embedded import EmbeddedPostgres, start_embedded
from batchyard.server.http.face import HttpFace, HttpParts, start_http_face
from batchyard.server.lifecycle import Policy, Service, Supervisor
from batchyard.server.limits import Kind
from batchyard.server.maintenance.pipeline_sweeper import PipelineSweeper
from batchyard.server.maintenance.rescuer import Rescuer
from batchyard.server.maintenance.retention import Retention, RunPurger
from batchyard.server.maintenance.scheduler import Scheduler
from batchyard.server.metrics.server_metrics import ServerMetrics
from batchyard.server.secret_keys import load_key_ring
from batchyard.server.settings import ServerSettings
from batchyard.server.tls import add_port, check_listen
from batchyard.v1 import (
    access_service_pb2,
    definition_service_pb2,
    fleet_service_pb2,
    log_service_pb2,
    queue_service_pb2,
    retention_service_pb2,
    run_service_pb2,
    schedule_service_pb2,
    worker_service_pb2,
)

log = structlog.get_logger(__name__)

SERVICES = [
    definition_service_pb2.DESCRIPTOR.services_by_name["DefinitionService"].full_name,
    run_service_pb2.DESCRIPTOR.services_by_name["RunService"].full_name,
    worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
    log_service_pb2.DESCRIPTOR.services_by_name["LogService"].full_name,
    *(s.full_name for s in access_service_pb2.DESCRIPTOR.services_by_name.values()),
    queue_service_pb2.DESCRIPTOR.services_by_name["QueueService"].full_name,
    schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
    retention_service_pb2.DESCRIPTOR.services_by_name["RetentionService"].full_name,
    fleet_service_pb2.DESCRIPTOR.services_by_name["FleetService"].full_name,
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
class _Services:
    """The background services, in the order they start (they stop in reverse)."""

    wakeups: Wakeups
    audit: AuditLog
    results: ResultReader
    batcher: SubmitBatcher
    reader: DefinitionReader
    rescuer: Rescuer
    pipeline_sweeper: PipelineSweeper
    scheduled_runs: ScheduledRuns
    scheduler: Scheduler
    purger: RunPurger
    retention: Retention

    def with_policies(self) -> list[tuple[Service, Policy]]:
        """Which crash ends the server: only the audit writer's (a trail that silently
        stops is worse than a restart); the loops of the others restart."""
        return [
            (self.wakeups, Policy.RESTART),
            (self.audit, Policy.FATAL),
            (self.results, Policy.RESTART),
            (self.batcher, Policy.RESTART),
            (self.reader, Policy.RESTART),
            (self.rescuer, Policy.RESTART),
            (self.pipeline_sweeper, Policy.RESTART),
            (self.scheduler, Policy.RESTART),
            (self.retention, Policy.RESTART),
        ]


POOL_CLOSE_SECONDS = 10.0
"""How long stop() waits for borrowed database connections to come back before it
terminates the pool (a connection never released must not hold the shutdown forever)."""


async def _close_pool(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        log.warning("database_pool_terminated", waited_seconds=POOL_CLOSE_SECONDS)
        pool.terminate()


@dataclass
class App:
    settings: ServerSettings
    port: int = 0
    dsn: str = ""
    """The database the server uses (set by start())."""
    _server: grpc.aio.Server | None = None
    _pool: asyncpg.Pool | None = None
    _embedded: EmbeddedPostgres | None = None
    _services: _Services | None = None
    _supervisor: Supervisor | None = None
    _health: HealthServicer = field(default_factory=HealthServicer)
    _stopped: bool = False
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a service whose crash ends the server crashed (`failure` names it)."""
    failure: str = ""
    budgets: Budgets | None = None
    """The concurrency budgets, with the calls they hold now (set by start())."""
    warn_without_tokens: bool = True
    """Warn at start when the database has no API token (`batchyard dev` makes one)."""
    http: HttpFace | None = None
    """The HTTP face (Connect, console, /metrics) when `http_listen` is set."""
    _served: list[tuple[object, ServiceDescriptor]] = field(default_factory=list)
    _authenticator: Authenticator | None = None
    metrics: ServerMetrics | None = None
    """The Prometheus metrics (served on the HTTP port)."""

    @property
    def embedded(self) -> EmbeddedPostgres | None:
        """The embedded PostgreSQL this server started (None on an external database)."""
        return self._embedded

    @property
    def rescuer(self) -> Rescuer | None:
        return self._services.rescuer if self._services is not None else None

    @property
    def scheduler(self) -> Scheduler | None:
        return self._services.scheduler if self._services is not None else None

    @property
    def retention(self) -> Retention | None:
        return self._services.retention if self._services is not None else None

    @property
    def _results(self) -> ResultReader | None:
        return self._services.results if self._services is not None else None

    async def start(self) -> None:
        check_listen(self.settings.listen, self.settings.tls, self.settings.insecure)
        box = SecretBox(load_key_ring(self.settings))
        dsn, self._embedded = await resolve_database(self.settings)
        self.dsn = dsn
        try:
            await run_migrations(dsn, box)
            self._pool = await create_pool(dsn, max_size=self.settings.pool_size)
            if self.warn_without_tokens:
                await _warn_without_tokens(self._pool)
            self._services = self._build_services(self._pool, box)
            self._supervisor = Supervisor(on_fatal=self._fail)
            for service, policy in self._services.with_policies():
                await self._supervisor.start(service, policy)
            self._server = self._build_server(self._pool, self._services, box)
            self.port = add_port(
                self._server, self.settings.listen, self.settings.tls, self.settings.insecure
            )
            await self._server.start()
            if self.settings.http_listen:
                self.http = await start_http_face(self._http_parts(self._pool))
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

    def _fail(self, name: str) -> None:
        self.failure = self.failure or name
        self.failed.set()

    def _build_services(self, pool: asyncpg.Pool, box: SecretBox) -> _Services:
        wakeups = Wakeups(pool, self.dsn)
        reader = DefinitionReader(pool, box)
        scheduled_runs = ScheduledRuns(reader, identity_of(self.dsn))
        artifacts = self.settings.artifacts.open()
        purger = RunPurger(pool, artifacts)
        return _Services(
            wakeups=wakeups,
            audit=AuditLog(pool),
            results=ResultReader(pool, WorkspaceResolver(), artifacts),
            batcher=SubmitBatcher(pool, box),
            reader=reader,
            rescuer=Rescuer(
                pool,
                wakeups,
                self.settings.rescue_interval_seconds,
                ttl_seconds=self.settings.lease_ttl_seconds,
                max_outage_seconds=self.settings.max_outage_seconds,
            ),
            pipeline_sweeper=PipelineSweeper(pool),
            scheduled_runs=scheduled_runs,
            scheduler=Scheduler(pool, box, wakeups, scheduled_runs.prepare),
            purger=purger,
            retention=Retention(pool, purger),
        )

    def _build_server(self, pool: asyncpg.Pool, bg: _Services, box: SecretBox) -> grpc.aio.Server:
        limits = self.settings.limits
        server = grpc.aio.server(
            options=[*limits.grpc_options(), ("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=limits.grpc_concurrency(),
        )
        budgets = self.budgets = Budgets(limits.budgets())
        metrics = self.metrics = ServerMetrics(pool)
        authenticator = self._authenticator = Authenticator(pool, bg.audit)
        served = self._servicers(pool, bg, box, authenticator)
        check_coverage([_service_of(servicer, module) for servicer, module in served])
        for servicer, module in served:
            service = _service_of(servicer, module)
            instrument(servicer, service, authenticator, budgets, metrics)
            add_service(server, servicer, service)
            self._served.append((servicer, service))
        probes = budgets[Kind.PROBES]
        health = _descriptor(health_pb2, "Health")
        add_service(server, self._health, health, probe_budget=probes)
        if self.settings.reflection:
            names = [*SERVICES, health.full_name, reflection.SERVICE_NAME]
            info = _descriptor(reflection_pb2, "ServerReflection")
            add_service(server, ReflectionServicer(names), info, probe_budget=probes)
        return server

    def _http_parts(self, pool: asyncpg.Pool) -> HttpParts:
        assert self._authenticator is not None
        assert self.metrics is not None
        return HttpParts(self.settings, self._served, self._authenticator, self.metrics)

    def _servicers(
        self, pool: asyncpg.Pool, bg: _Services, box: SecretBox, authenticator: Authenticator
    ) -> list[tuple[object, Any]]:
        workspaces = WorkspaceResolver()
        service_db = identity_of(self.dsn)  # SQL jobs may not name it
        lease_settings = LeaseSettings(
            ttl_seconds=self.settings.lease_ttl_seconds,
            max_outage_seconds=self.settings.max_outage_seconds,
        )
        run_parts = (bg.wakeups, bg.batcher, bg.reader, bg.results, bg.audit, service_db)
        return [
            (
                DefinitionServicer(pool, box, workspaces, bg.audit, service_db),
                definition_service_pb2,
            ),
            (RunServicer(pool, box, workspaces, *run_parts), run_service_pb2),
            (WorkerServicer(pool, box, bg.wakeups, lease_settings), worker_service_pb2),
            (LogServicer(pool, workspaces, bg.wakeups), log_service_pb2),
            (TokenServicer(pool, bg.audit, authenticator), access_service_pb2),
            (WorkspaceServicer(pool, bg.audit), access_service_pb2),
            (AuditServicer(pool, bg.audit), access_service_pb2),
            (QueueServicer(pool, workspaces, bg.wakeups, bg.audit), queue_service_pb2),
            (
                ScheduleServicer(pool, box, workspaces, bg.wakeups, bg.scheduled_runs, bg.audit),
                schedule_service_pb2,
            ),
            (
                RetentionServicer(pool, box, workspaces, bg.purger.purge, bg.audit),
                retention_service_pb2,
            ),
            (FleetServicer(pool, self.settings.lease_ttl_seconds), fleet_service_pb2),
        ]

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, stop accepting, drain in-flight calls, stop the background
        services (in reverse order of start), close the database."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.grace_seconds if grace is None else grace
        await self._health.enter_graceful_shutdown()
        if self._services is not None:  # open streams and long-polls end now (UNAVAILABLE)
            self._services.wakeups.drain()
        if self.http is not None:
            await self.http.stop()
        if self._server is not None:
            log.info("server_draining", grace_seconds=grace)
            await self._server.stop(grace)
        if self._supervisor is not None:
            await self._supervisor.stop()
        if self._pool is not None:
            await _close_pool(self._pool)
        if self._embedded is not None:
            await self._embedded.stop()
        log.info("server_stopped")


async def _warn_without_tokens(pool: asyncpg.Pool) -> None:
    if await count_tokens(pool) == 0:
        log.warning(
            "no_api_tokens",
            hint="every call needs a token: create the first admin token with "
            "`batchyard server bootstrap` (same database flags)",
        )


def _describe_tls(settings: ServerSettings) -> str:
    if settings.tls is None:
        return "off"
    return "mutual" if settings.tls.client_ca is not None else "on"


async def serve(settings: ServerSettings) -> int:
    """Run until SIGTERM or SIGINT (0) or a fatal service crash (1), then shut down
    gracefully."""
    app = App(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        await first_of(stop, app.failed)
        if app.failed.is_set():
            log.error("server_ending", failed_service=app.failure)
            return 1
        log.info("shutdown_requested")
        return 0
    finally:
        await app.stop()


async def first_of(*events: asyncio.Event) -> None:
    """Wait until one of `events` is set."""
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
