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


def _to_json(value: object) -> str:
    """Documents become JSON; text is taken as already-encoded JSON (batch submits encode
    each distinct configuration once)."""
    return value if isinstance(value, str) else json.dumps(value)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for codec in ("json", "jsonb"):
        await conn.set_type_codec(codec, encoder=_to_json, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections carry no session state of ours (no SET, LISTEN, temp tables or
    prepared transactions), so the default reset query would be a wasted round trip on
    every release. asyncpg still rolls back a transaction left open."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings=SESSION_SETTINGS,
        command_timeout=60,
    )
    assert pool is not None
    return pool


# What the API layer holds: the pool's type, without importing the driver itself.
Pool = asyncpg.Pool
