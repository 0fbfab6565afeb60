"""The target database's side: the table to load, and the ledger of files loaded into it.

The ledger (default ``<schema>.batchyard_ingest_ledger``, created when missing) holds one
row per (target table, object URI, ETag, size). A file's ledger row is inserted in the same
transaction as its rows, first (``INSERT … ON CONFLICT DO NOTHING``): a file that is in is
never loaded again, by a retry, a re-submission, or a second run at the same time (whose
insert waits for this transaction and then finds the row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import asyncpg

from batchyard.worker.sources.port import StoredObject

DEFAULT_LEDGER = "batchyard_ingest_ledger"
_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class TargetError(Exception):
    """The table or the ledger cannot be used; the message is for users."""


@cache
def queries() -> dict[str, str]:
    """The named blocks of ``queries.sql``."""
    text = resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    matches = list(_HEADER.finditer(text))
    blocks = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        blocks[match[1]] = text[match.end() : end].strip()
    return blocks


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def split_name(name: str) -> tuple[str | None, str]:
    """``schema.table`` → (schema, table); a name with quotes is taken as SQL writes it."""
    schema, dot, table = name.rpartition(".")
    return (schema or None) if dot else None, table


@dataclass(frozen=True)
class TargetColumn:
    name: str
    type: str
    """The PostgreSQL type name (``int8``, ``text``, ``timestamptz``…)."""
    not_null: bool
    defaulted: bool
    """Has a default (or is an identity or generated column)."""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[TargetColumn, ...]

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> TargetColumn | None:
        return next((c for c in self.columns if c.name == name), None)


async def describe_table(conn: Any, name: str) -> Table:
    """The table ``name`` names; TargetError when it does not exist or may not be written."""
    try:
        row = await conn.fetchrow(queries()["describe_table"], name)
    except asyncpg.InvalidNameError:
        raise TargetError(f"{name!r} is not a valid table name") from None
    if row is None:
        raise TargetError(f"table {name!r} does not exist in the target database (or is no table)")
    table = Table(
        row["schema"],
        row["name"],
        tuple(
            TargetColumn(*column)
            for column in zip(
                row["columns"], row["types"], row["not_null"], row["defaulted"], strict=True
            )
        ),
    )
    if not row["may_insert"]:
        user = await conn.fetchval("SELECT current_user")
        raise TargetError(
            f"role {user!r} may not insert into table {table.display} (permission denied): "
            f"GRANT INSERT ON {table.qualified} TO {quote_ident(user)}"
        )
    return table


class Ledger:
    """The ledger table of one target table."""

    def __init__(self, table: Table, ledger_name: str) -> None:
        self.table = table
        schema, name = split_name(ledger_name) if ledger_name else (table.schema, DEFAULT_LEDGER)
        self.name = f"{schema}.{name}" if schema else name
        self.qualified = (
            f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)
        )

    def _sql(self, name: str) -> str:
        return queries()[name].replace("{ledger}", self.qualified)

    async def ensure(self, conn: Any, *, create: bool) -> bool:
        """Whether the ledger exists (created first with ``create``)."""
        if await conn.fetchval(queries()["ledger_exists"], self.qualified):
            return True
        if not create:
            return False
        try:
            await conn.execute(self._sql("create_ledger"))
        except asyncpg.UniqueViolationError:  # created by another runner at the same time
            pass
        except asyncpg.InsufficientPrivilegeError:
            raise TargetError(
                f"cannot create the ingest ledger {self.name} (permission denied): create it "
                "as its schema's owner with the statement in the worker's README, or name "
                "another one in ledger_table"
            ) from None
        return True

    async def loaded(self, conn: Any, files: list[StoredObject]) -> set[tuple[str, str, int]]:
        """Which of ``files`` are in the table already."""
        rows = await conn.fetch(
            self._sql("loaded_files"), self.table.display, [f.uri for f in files]
        )
        return {(row["object_uri"], row["etag"], row["size"]) for row in rows}

    async def claim(self, conn: Any, item: StoredObject, run: str, attempt: int) -> bool:
        """In the file's transaction: True when this transaction loads it."""
        try:
            claimed = await conn.fetchval(
                self._sql("claim_file"),
                self.table.display,
                item.uri,
                item.etag,
                item.size,
                run,
                attempt,
            )
        except asyncpg.InsufficientPrivilegeError:
            raise TargetError(
                f"the target role may not write the ingest ledger {self.name}"
            ) from None
        return bool(claimed)

    async def finish(self, conn: Any, item: StoredObject, rows: int, bad_rows: int) -> None:
        await conn.execute(
            self._sql("finish_file"),
            self.table.display,
            item.uri,
            item.etag,
            item.size,
            rows,
            bad_rows,
        )


def key_of(item: StoredObject) -> tuple[str, str, int]:
    return (item.uri, item.etag, item.size)
