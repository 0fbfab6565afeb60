"""Forward-only migrations: numbered .sql files applied once each, in order.

Each file runs in its own transaction, all of them under one advisory lock, so several
server replicas starting together apply each migration exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from batchyard.server.db.sql import q

log = structlog.get_logger(__name__)

# pg_advisory_lock key: "batchyard" folded into a bigint.
MIGRATION_LOCK_KEY = 0x6261746368796172
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, ordered by version."""
    folder = resources.files("batchyard.server.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must be 1..n without gaps, got {versions}")
    return found


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the pending migrations; returns the versions applied now."""
    applied_now: list[int] = []
    await conn.execute(q("lock_migrations"), MIGRATION_LOCK_KEY)
    try:
        await conn.execute(q("create_migrations_table"))
        done = {r["version"] for r in await conn.fetch(q("applied_migrations"))}
        for migration in load_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(q("record_migration"), migration.version, migration.name)
            applied_now.append(migration.version)
            log.info("migration_applied", version=migration.version, name=migration.name)
    finally:
        await conn.execute(q("unlock_migrations"), MIGRATION_LOCK_KEY)
    return applied_now
