"""The asyncpg pool: JSON codecs and the session settings every connection gets."""

from __future__ import annotations

import json

import asyncpg

# Keep transactions short: a stuck one must not hold back vacuum or the lease queue.
SESSION_SETTINGS = {
    "statement_timeout": "30s",
    "idle_in_transaction_session_timeout": "60s",
    "lock_timeout": "10s",
    "application_name": "batchyard-server",
}


async def _init_connection(conn: asyncpg.Connection) -> None:
    for codec in ("json", "jsonb"):
        await conn.set_type_codec(
            codec, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        server_settings=SESSION_SETTINGS,
        command_timeout=60,
    )
    assert pool is not None
    return pool


# What the API layer holds: the pool's type, without importing the driver itself.
Pool = asyncpg.Pool
