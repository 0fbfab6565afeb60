"""The committed schema.sql is what the migrations produce from scratch."""

from __future__ import annotations

from tests.schema_dump import SCHEMA_SQL, schema_from_scratch


async def test_migrations_from_scratch_equal_schema_sql(pg_admin_dsn):
    fresh = await schema_from_scratch(pg_admin_dsn)
    assert fresh == SCHEMA_SQL.read_text(), (
        "schema.sql is stale: run `uv run python -m tests.schema_dump --write`"
    )


async def test_migrations_are_idempotent(database_url):
    from batchyard.server.app import run_migrations

    assert await run_migrations(database_url) == []
