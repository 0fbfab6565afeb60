"""Shared fixtures: real PostgreSQL, a real server on 127.0.0.1, real channels.

The suite starts its own embedded PostgreSQL unless BATCHYARD_TEST_DATABASE_URL names a
server (its database is used only to create and drop the per-test databases). Under
pytest-xdist (tests/check.py runs `-n 4`) every worker process is a session of its own:
its own embedded PostgreSQL (or its own databases on the given server), its own template.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest

from batchyard.client.connection import TOKEN_ENV, aio_channel
from batchyard.server.app import App
from batchyard.server.artifacts.location import ArtifactLocation
from batchyard.server.embedded import start_embedded
from batchyard.server.log_config import configure_logging
from batchyard.server.settings import ServerSettings
from batchyard.v1 import (
    definition_service_pb2_grpc,
    queue_service_pb2_grpc,
    run_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from tests import pg
from tests.keys import TEST_KEY

# tests.s3: the S3 fixtures (s3_endpoint, aws_env, s3, bucket); tests.serial: the
# `serial` marker, for a test that must not run beside any other (even under xdist).
pytest_plugins = ["tests.s3", "tests.serial"]


@pytest.fixture(scope="session", autouse=True)
def server_logs_to_stderr() -> None:
    """In-process servers log as `batchyard server` does, to the stderr of the session (so
    a test reading the CLI's output through capsys never sees server lines)."""
    configure_logging("console", "warning")


@pytest.fixture(scope="session")
async def pg_admin_dsn() -> AsyncIterator[str]:
    given = os.environ.get("BATCHYARD_TEST_DATABASE_URL")
    if given:
        yield given
        return
    # Not under pytest's basetemp: a concurrent pytest run prunes old basetemps, and a
    # PostgreSQL whose data directory vanishes shuts down.
    home = Path(tempfile.mkdtemp(prefix="batchyard-test-pg-"))
    embedded = await start_embedded(home / "data")
    try:
        await pg.tune_for_tests(embedded.admin_dsn)
        yield embedded.admin_dsn
    finally:
        await embedded.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def sql_target_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    """The DSN of a SQL jobs' target: a database of its own, owned by a login role of its
    own with a password, on the suite's PostgreSQL (never the service's database or role).
    The password holds "canary", so tests can look for it where it must not be."""
    suffix = uuid.uuid4().hex[:12]
    role, database, password = f"by_sql_{suffix}", f"by_sql_{suffix}", f"canary-{suffix}"
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        await admin.execute(f"CREATE DATABASE {database} OWNER {role}")
        parts = urlsplit(pg.dsn_for(pg_admin_dsn, database))
        host = parts.netloc.rpartition("@")[2]
        yield urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


@pytest.fixture(scope="session")
async def template_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    """The migrated template every test database copies. Its admin token (of the default
    workspace) is in $BATCHYARD_TOKEN for the session, so the SDK, the CLI and worker
    processes authenticate as a user would configure them."""
    name, token = await pg.create_template(pg_admin_dsn)
    before = os.environ.get(TOKEN_ENV)
    os.environ[TOKEN_ENV] = token
    yield name
    if before is None:
        os.environ.pop(TOKEN_ENV, None)
    else:
        os.environ[TOKEN_ENV] = before
    await pg.drop_database(pg_admin_dsn, name)


@pytest.fixture
def admin_token(template_db: str) -> str:
    """The admin token of the default workspace of every test database."""
    return os.environ[TOKEN_ENV]


@pytest.fixture
async def database_url(pg_admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, fully migrated database for one test."""
    name = await pg.create_database(pg_admin_dsn, template=template_db)
    yield pg.dsn_for(pg_admin_dsn, name)
    await pg.drop_database(pg_admin_dsn, name)


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    """The artifact directory of this test's servers (workers started by tests/e2e's
    `start_worker` store results there too)."""
    return tmp_path / "artifacts"


@pytest.fixture
async def server_factory(
    database_url: str, artifacts_dir: Path
) -> AsyncIterator[Callable[..., Awaitable[App]]]:
    """Start real servers on 127.0.0.1 over this test's database, with settings changed."""
    started: list[App] = []

    async def start(**changes: object) -> App:
        settings = ServerSettings(
            listen="127.0.0.1:0",
            database_url=database_url,
            grace_seconds=1,
            artifacts=ArtifactLocation(directory=artifacts_dir),
            secret_keys=(TEST_KEY,),
        )
        app = App(replace(settings, **changes))  # type: ignore[arg-type]
        await app.start()
        started.append(app)
        return app

    yield start
    for app in started:
        await app.stop(0)


@pytest.fixture
async def server(
    request: pytest.FixtureRequest, server_factory: Callable[..., Awaitable[App]]
) -> App:
    """The real server, in this process, on 127.0.0.1 with a free port. A test changes its
    settings with `@pytest.mark.server(lease_ttl_seconds=0.6, ...)`."""
    marker = request.node.get_closest_marker("server")
    return await server_factory(**(marker.kwargs if marker else {}))


@pytest.fixture
def target(server: App) -> str:
    """The server's address for clients: 127.0.0.1:PORT."""
    return f"127.0.0.1:{server.port}"


@pytest.fixture
async def channel(target: str, admin_token: str) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to the test's server, authenticated as an admin of `default`."""
    async with aio_channel(target, token=admin_token) as ch:
        yield ch


@pytest.fixture
def definitions(channel: grpc.aio.Channel) -> definition_service_pb2_grpc.DefinitionServiceStub:
    return definition_service_pb2_grpc.DefinitionServiceStub(channel)


@pytest.fixture
def runs(channel: grpc.aio.Channel) -> run_service_pb2_grpc.RunServiceStub:
    return run_service_pb2_grpc.RunServiceStub(channel)


@pytest.fixture
def workers(channel: grpc.aio.Channel) -> worker_service_pb2_grpc.WorkerServiceStub:
    return worker_service_pb2_grpc.WorkerServiceStub(channel)


@pytest.fixture
def queues(channel: grpc.aio.Channel) -> queue_service_pb2_grpc.QueueServiceStub:
    return queue_service_pb2_grpc.QueueServiceStub(channel)


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent
