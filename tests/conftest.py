"""Shared fixtures: real PostgreSQL, a real server on 127.0.0.1, real channels.

The suite starts its own embedded PostgreSQL unless BATCHYARD_TEST_DATABASE_URL names a
server (its database is used only to create and drop the per-test databases).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from batchyard.server.app import App
from batchyard.server.embedded import start_embedded
from batchyard.server.settings import ServerSettings
from batchyard.v1 import definition_service_pb2_grpc
from tests import pg


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
async def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    given = os.environ.get("BATCHYARD_TEST_DATABASE_URL")
    if given:
        yield given
        return
    embedded = await start_embedded(tmp_path_factory.mktemp("pg") / "data")
    try:
        yield embedded.admin_dsn
    finally:
        await embedded.stop()


@pytest.fixture(scope="session")
async def template_db(pg_admin_dsn: str) -> AsyncIterator[str]:
    name = await pg.create_template(pg_admin_dsn)
    yield name
    await pg.drop_database(pg_admin_dsn, name)


@pytest.fixture
async def database_url(pg_admin_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, fully migrated database for one test."""
    name = await pg.create_database(pg_admin_dsn, template=template_db)
    yield pg.dsn_for(pg_admin_dsn, name)
    await pg.drop_database(pg_admin_dsn, name)


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[App]:
    """The real server, in this process, on 127.0.0.1 with a free port."""
    app = App(ServerSettings(listen="127.0.0.1:0", database_url=database_url, grace_seconds=1))
    await app.start()
    yield app
    await app.stop(0)


@pytest.fixture
def target(server: App) -> str:
    """The server's address for clients: 127.0.0.1:PORT."""
    return f"127.0.0.1:{server.port}"


@pytest.fixture
async def channel(target: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(target) as ch:
        yield ch


@pytest.fixture
def definitions(channel: grpc.aio.Channel) -> definition_service_pb2_grpc.DefinitionServiceStub:
    return definition_service_pb2_grpc.DefinitionServiceStub(channel)


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent
