"""Migrations that move data keep it: a run stored before 0005 reads the same after it."""

from __future__ import annotations

import json
import uuid

import asyncpg

from batchyard.server.app import run_migrations
from batchyard.server.db import runs as run_store
from batchyard.server.db.migrate import load_migrations
from batchyard.server.db.pool import create_pool
from batchyard.server.db.sql import q
from batchyard.server.domain.access import Workspace
from tests import pg
from tests.keys import sealing_box

DEFAULT_WS = uuid.UUID("00000000-0000-0000-0000-000000000001")
CONFIG: dict[str, object] = {
    "type": "SHELL",
    "source": None,
    "source_location": "true",
    "args": ["a"],
    "env": {"K": "v"},
    "retry_strategy": {
        "num_retries": 2,
        "delay_seconds": None,
        "retry_on_timeout": False,
        "exit_code_rules": [],
    },
    "timeout_seconds": None,
    "queue": "default",
    "priority": 0,
    "resources": {
        "cpus": 0.0,
        "memory_bytes": 0,
        "cpu_time_seconds": 0.0,
        "open_files": 0,
        "processes": 0,
        "output_bytes": 0,
    },
    "sql_target": None,
}
SECRETS = {"env": {"TOKEN": "s"}, "git_token": "", "sql_dsn": ""}


async def apply_up_to(conn: asyncpg.Connection, last: int) -> None:
    await conn.execute(q("create_migrations_table"))
    for migration in load_migrations():
        if migration.version <= last:
            await conn.execute(migration.sql)
            await conn.execute(q("record_migration"), migration.version, migration.name)


async def test_runs_stored_before_shared_configs_read_the_same_after(pg_admin_dsn):
    name = await pg.create_database(pg_admin_dsn)
    dsn = pg.dsn_for(pg_admin_dsn, name)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await apply_up_to(conn, 4)
            run_ids = [uuid.uuid4(), uuid.uuid4()]
            for run_id in run_ids:
                await conn.execute(
                    "INSERT INTO runs (id, workspace_id, queue, priority, status, reason)"
                    " VALUES ($1, $2, 'default', 0, 'PENDING', 'RECENTLY_SUBMITTED')",
                    run_id,
                    DEFAULT_WS,
                )
                await conn.execute(
                    "INSERT INTO run_specs (run_id, config, secrets, payload)"
                    " VALUES ($1, $2, $3, $4)",
                    run_id,
                    json.dumps(CONFIG),
                    json.dumps(SECRETS),
                    b"p",
                )
        finally:
            await conn.close()
        box = sealing_box()
        expected = [v.version for v in load_migrations() if v.version > 4]
        assert await run_migrations(dsn, box) == expected
        pool = await create_pool(dsn)
        try:
            found = await run_store.get_many(pool, box, Workspace(DEFAULT_WS, "default"), run_ids)
            assert sorted(found) == sorted(run_ids)
            for run in found.values():
                assert run.config.args == ("a",) and run.config.env == {"K": "v"}
                assert run.config.retry_strategy.num_retries == 2
                assert run.secrets.env == {"TOKEN": "s"}
            shared = await pool.fetchval("SELECT count(*) FROM run_configs")
            assert shared == 1, "equal configurations are stored once"
        finally:
            await pool.close()
    finally:
        await pg.drop_database(pg_admin_dsn, name)
