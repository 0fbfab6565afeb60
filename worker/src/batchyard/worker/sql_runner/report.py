"""What the runner prints: the job's log, one line per event.

stdout (INFO in the run's log)::

    connected to database "analytics" as "reporter" (PostgreSQL 18.6); 3 statements
    [1/3] line 1: CREATE TABLE t (id int, name text)
    [1/3] CREATE TABLE (2 ms)
    [2/3] line 3: INSERT INTO t VALUES (1, 'a'), (2, 'b')
    [2/3] INSERT 0 2: 2 rows (1 ms)
    [3/3] line 5: SELECT * FROM t
    [3/3] 2 rows saved to result.csv (3 ms)
    ::progress 100

and ``::progress N`` after each statement (statement i of n: ``100 * i // n``), which the
worker turns into the run's progress. stderr (WARNING) carries the error that stopped the
file — ``ERROR: <message> (SQLSTATE <code>) in statement <i> of <n> at line <L>``, then
DETAIL, HINT and CONTEXT lines — and the server's warnings. Statements are shown on one
line, cut at :data:`PREVIEW_CHARS`.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

from batchyard.worker.sql_runner.execute import Done, StatementError
from batchyard.worker.sql_runner.split import Statement

PREVIEW_CHARS = 200
_SPACES = re.compile(r"\s+")


def preview(text: str) -> str:
    """The statement on one line, cut at :data:`PREVIEW_CHARS` with a note of its length."""
    line = _SPACES.sub(" ", text).strip()
    if len(line) <= PREVIEW_CHARS:
        return line
    return f"{line[:PREVIEW_CHARS]}… ({len(text)} characters)"


def outcome(done: Done, *, saved: bool, seconds: float) -> str:
    """``CREATE TABLE (2 ms)``, ``INSERT 0 2: 2 rows (1 ms)``, ``5 rows saved to result.csv``."""
    took = _duration(seconds)
    if not done.returns_rows:
        rows = "" if done.rows is None else f": {_rows(done.rows)}"
        return f"{done.tag or 'done'}{rows} ({took})"
    count = "rows" if done.rows is None else _rows(done.rows)
    where = "saved to result.csv" if saved else "returned"
    return f"{count} {where} ({took})"


def error_lines(
    failure: StatementError, statement: Statement, number: int, total: int
) -> list[str]:
    """The error that stopped the file: the ERROR line, then DETAIL, HINT and CONTEXT."""
    error = failure.error
    line = error_line(statement, getattr(error, "position", None), failure.shift)
    sqlstate = getattr(error, "sqlstate", None) or "?"
    message = getattr(error, "message", None) or str(error)
    where = f"in statement {number} of {total} at line {line}"
    lines = [f"ERROR: {message} (SQLSTATE {sqlstate}) {where}"]
    for label, field in (("DETAIL", "detail"), ("HINT", "hint"), ("CONTEXT", "context")):
        value = getattr(error, field, None)
        if value:
            lines.append(f"{label}: {value}")
    return lines


def error_line(statement: Statement, position: Any, shift: int = 0) -> int:
    """The file's line of an error: where its position points, else the statement's start."""
    try:
        at = int(position) - shift  # 1-based, in characters of what was sent
    except (TypeError, ValueError):
        return statement.line
    if not 1 <= at <= len(statement.text):
        return statement.line
    return statement.line + statement.text.count("\n", 0, at - 1)


class Reporter:
    """Writes the runner's lines to its stdout and stderr, flushed at once."""

    def __init__(self, total: int, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.total = total
        self.current = 0
        """The statement running (1-based), 0 before the first."""
        self._out = out or sys.stdout
        self._err = err or sys.stderr

    def info(self, message: str) -> None:
        print(message, file=self._out, flush=True)

    def warning(self, message: str) -> None:
        self._out.flush()
        print(message, file=self._err, flush=True)

    def starting(self, number: int, statement: Statement) -> None:
        self.current = number
        self.info(f"[{number}/{self.total}] line {statement.line}: {preview(statement.text)}")

    def finished(self, number: int, done: Done, *, saved: bool, seconds: float) -> None:
        self.info(f"[{number}/{self.total}] {outcome(done, saved=saved, seconds=seconds)}")
        self.info(f"::progress {100 * number // self.total}")

    def failed(self, failure: StatementError, statement: Statement) -> None:
        for line in error_lines(failure, statement, self.current, self.total):
            self.warning(line)

    def runner_error(self, reason: str, statement: Statement) -> None:
        where = f"in statement {self.current} of {self.total} at line {statement.line}"
        self.warning(f"ERROR: {reason} {where}")

    def server_message(self, connection: object, message: Any) -> None:
        """A NOTICE, INFO or WARNING the server sent (an asyncpg log listener)."""
        severity = getattr(message, "severity", None) or "NOTICE"
        text = f"{severity}: {getattr(message, 'message', message)}"
        if severity in ("WARNING", "ERROR"):
            self.warning(text)
        else:
            self.info(text)


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count} rows"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"
