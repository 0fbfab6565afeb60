"""Forward-only migrations: numbered .sql files applied once each, in order.

Each file runs in its own transaction, all of them under one advisory lock, so several
server replicas starting together apply each migration exactly once. A migration may have
a step in Python, run after its SQL in the same transaction (`STEPS`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.sealing import seal_stored_secrets
from batchyard.server.db.sql import q

log = structlog.get_logger(__name__)

# pg_advisory_lock key: "batchyard" folded into a bigint.
MIGRATION_LOCK_KEY = 0x6261746368796172
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Work a migration needs beyond SQL, run after its SQL in its transaction: sealing
# secrets takes the server's key, which the database does not have.
Step = Callable[[asyncpg.Connection, SecretBox | None], Awaitable[None]]
STEPS: dict[int, Step] = {8: seal_stored_secrets}


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


async def migrate(conn: asyncpg.Connection, box: SecretBox | None = None) -> list[int]:
    """Apply the pending migrations; returns the versions applied now. `box` (the
    server's keys) is needed only to seal secrets stored before migration 8."""
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
                if migration.version in STEPS:
                    await STEPS[migration.version](conn, box)
                await conn.execute(q("record_migration"), migration.version, migration.name)
            applied_now.append(migration.version)
            log.info("migration_applied", version=migration.version, name=migration.name)
    finally:
        await conn.execute(q("unlock_migrations"), MIGRATION_LOCK_KEY)
    return applied_now
