"""The suite's PostgreSQL: an embedded server (or BATCHYARD_TEST_DATABASE_URL), a template
database migrated once per session, and a fresh database per test."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from batchyard.server.app import run_migrations
from batchyard.server.bootstrap import create_admin_token


def dsn_for(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


TEST_SETTINGS = {"fsync": "off", "full_page_writes": "off"}
"""The suite's own embedded server gets no durability across an OS crash (nothing it holds
outlives the session): a database per test is then created and dropped in ~0.07 s instead
of 0.3-0.8 s (measured on the shared 2-core machine). A process crash (kill -9 of a
server or of PostgreSQL itself) loses nothing: commits still reach the OS, and
synchronous_commit stays on."""


async def tune_for_tests(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name, value in TEST_SETTINGS.items():
            await conn.execute(f"ALTER SYSTEM SET {name} = {value}")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


async def create_database(admin_dsn: str, template: str | None = None) -> str:
    name = f"by_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        suffix = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    finally:
        await conn.close()
    return name


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_template(admin_dsn: str) -> tuple[str, str]:
    """A database with every migration applied and an admin token of the default
    workspace, to copy per test: its name and the token's secret."""
    name = await create_database(admin_dsn)
    await run_migrations(dsn_for(admin_dsn, name))
    return name, await create_admin_token(dsn_for(admin_dsn, name), "test-admin")
