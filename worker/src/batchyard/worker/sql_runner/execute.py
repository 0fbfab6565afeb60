"""Running one statement, and streaming its rows to CSV when it returns any.

Each statement is prepared first (parsed and described by the server, not run): the
description says whether it returns rows, so it then runs exactly once —

* no rows (DDL, DML without RETURNING, SET, BEGIN, …): executed; the command tag
  (``INSERT 0 5``) is the outcome;
* rows, from a statement COPY can wrap (SELECT, VALUES, WITH, TABLE, and INSERT / UPDATE /
  DELETE / MERGE with RETURNING): ``COPY (statement) TO STDOUT (FORMAT csv, HEADER)``, the
  server's own CSV streamed chunk by chunk into the file (or counted and dropped). asyncpg
  loses COPY data that arrives next to a notice (MagicStack/asyncpg#1264), so notices are
  off while rows are copied (``client_min_messages = error``, then the session's value
  again), and the CSV records received are counted against the server's row count: a
  transfer that still lost rows fails the statement rather than leave a short result;
* rows from anything else (SHOW, EXPLAIN, FETCH, EXECUTE, CALL): fetched through a cursor,
  a batch at a time (in a transaction, which cursors need, unless one is open already; CALL
  returns one row and is fetched whole), written by :mod:`.csv_rows`.

``COPY … FROM STDIN`` and ``COPY … TO STDOUT`` are refused: a job has no client data to
send, and its result set is the last statement's rows.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from batchyard.worker.sql_runner.csv_rows import CsvRecords, csv_line
from batchyard.worker.sql_runner.split import Statement

COPYABLE = frozenset({"select", "values", "with", "table", "insert", "update", "delete", "merge"})
COPY_PREFIX = "COPY (\n"
"""What asyncpg's ``copy_from_query`` puts before the statement (the line break is ours, so
a trailing ``--`` comment cannot swallow the closing parenthesis)."""
FETCH_BATCH = 500
_QUIET = (
    "SELECT pg_catalog.current_setting('client_min_messages'), "
    "pg_catalog.set_config('client_min_messages', 'error', false)"
)
_RESTORE = "SELECT pg_catalog.set_config('client_min_messages', $1, false)"
_COPY_STDIO = re.compile(r"\b(?:from\s+stdin|to\s+stdout)\b", re.IGNORECASE)
_ROWS_IN_TAG = re.compile(r"(?:INSERT \d+|UPDATE|DELETE|SELECT|MERGE|COPY|FETCH|MOVE) (\d+)")


@dataclass(frozen=True)
class Done:
    """How a statement went."""

    tag: str
    """The command tag for a statement without rows ("CREATE TABLE", "INSERT 0 5")."""
    rows: int | None
    """Rows returned, or affected when the tag says; None when neither applies."""
    returns_rows: bool


class Output(Protocol):
    """Where a statement's CSV goes."""

    def write(self, data: bytes, /) -> object: ...


class StatementError(Exception):
    """The server refused the statement; ``shift`` characters came before it in what was sent
    (the error's position counts them)."""

    def __init__(self, error: asyncpg.PostgresError, shift: int = 0) -> None:
        super().__init__(str(error))
        self.error = error
        self.shift = shift


class RunnerError(Exception):
    """The runner's own objection to a statement: refused before it was sent, or rows lost
    in transfer."""


async def execute(conn: Any, statement: Statement, output: Output | None) -> Done:
    """Runs ``statement`` once; its rows go to ``output`` as CSV (or are only counted)."""
    if statement.first_word == "copy" and _COPY_STDIO.search(statement.text):
        raise RunnerError(
            "COPY … FROM STDIN / TO STDOUT cannot run in a SQL job (the rows of the last "
            "statement are saved as result.csv: end the file with a SELECT instead)"
        )
    try:
        prepared = await conn.prepare(statement.text)
        if not prepared.get_attributes():
            await prepared.fetch()
            tag = prepared.get_statusmsg() or ""
            return Done(tag=tag, rows=rows_in(tag), returns_rows=False)
        if statement.first_word in COPYABLE:
            rows = await _copy(conn, statement.text, output)
        else:
            rows = await _fetch(conn, prepared, statement.first_word, output)
    except asyncpg.PostgresConnectionError:
        raise  # the connection is gone: not the statement's error
    except asyncpg.PostgresError as exc:
        raise StatementError(exc) from None
    return Done(tag="", rows=rows, returns_rows=True)


def rows_in(tag: str) -> int | None:
    """The row count a command tag carries ("INSERT 0 5" → 5), else None."""
    match = _ROWS_IN_TAG.fullmatch(tag)
    return int(match.group(1)) if match else None


async def _copy(conn: Any, text: str, output: Output | None) -> int | None:
    records = CsvRecords()

    async def sink(chunk: bytes) -> None:
        records.feed(chunk)
        if output is not None:
            output.write(chunk)

    level = await conn.fetchval(_QUIET)
    try:
        tag = await conn.copy_from_query(f"\n{text}\n", output=sink, format="csv", header=True)
    except asyncpg.PostgresConnectionError:
        raise
    except asyncpg.PostgresError as exc:
        raise StatementError(exc, len(COPY_PREFIX)) from None
    await conn.execute(_RESTORE, level)
    rows = rows_in(tag)
    if rows is not None and records.count != rows + 1:  # + the header
        raise RunnerError(
            f"the statement returned {rows} rows but {max(records.count - 1, 0)} arrived "
            "whole (see MagicStack/asyncpg#1264): result not saved"
        )
    return rows


async def _fetch(conn: Any, prepared: Any, first_word: str, output: Output | None) -> int:
    if output is not None:
        output.write(csv_line(attribute.name for attribute in prepared.get_attributes()))
    if first_word == "call":  # one row; a procedure may commit, so no transaction around it
        records = await prepared.fetch()
        _write(output, records)
        return len(records)
    rows = 0
    opened = contextlib.nullcontext() if conn.is_in_transaction() else conn.transaction()
    async with opened:
        cursor = await prepared.cursor()
        while batch := await cursor.fetch(FETCH_BATCH):
            rows += len(batch)
            _write(output, batch)
    return rows


def _write(output: Output | None, records: list[Any]) -> None:
    if output is not None:
        output.write(b"".join(csv_line(record.values()) for record in records))
