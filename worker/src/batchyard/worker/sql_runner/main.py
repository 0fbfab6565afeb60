"""The runner's process: the DSN from the environment, the file's statements one by one.

Exit codes: 0 every statement ran; 1 a statement failed (later ones did not run) or the
runner failed; 2 the invocation was wrong (no DSN, an unreadable file, arguments);
3 the target database could not be reached, or the connection was lost; 143 (128 +
SIGTERM) stopped by a signal — the running statement is cancelled on the server first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import asyncpg

from batchyard.worker.sql_runner.execute import RunnerError, StatementError, execute
from batchyard.worker.sql_runner.report import Reporter
from batchyard.worker.sql_runner.secrecy import scrub
from batchyard.worker.sql_runner.split import Statement, split_statements

DSN_VARIABLE = "BATCHYARD_SQL_DSN"
"""The variable the worker hands the DSN in (removed from the environment at start)."""
OUTPUT_VARIABLE = "BATCHYARD_OUTPUT_DIR"
RESULT_NAME = "result.csv"
APPLICATION_NAME = "batchyard-sql-job"
CONNECT_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0
CLIENT_CHECK_INTERVAL = "2s"
"""How often the server checks, during a long statement, that the runner is still there
(PostgreSQL ≥ 14): a runner killed with SIGKILL does not leave its query running."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECTION = 0, 1, 2, 3
EXIT_SIGNALLED = 128 + signal.SIGTERM
_CONNECT_ERRORS = (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)


def main(argv: list[str]) -> int:
    """``python -m batchyard.worker.sql_runner FILE``."""
    dsn = os.environ.pop(DSN_VARIABLE, "")
    if len(argv) != 1:
        return _usage(f"expected one SQL file, got {len(argv)} arguments (SQL jobs take no args)")
    try:
        text = Path(argv[0]).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return _usage(f"the SQL file is not UTF-8 text (byte {exc.start})")
    except OSError as exc:
        return _usage(f"cannot read the SQL file: {exc.strerror}")
    statements = split_statements(text)
    reporter = Reporter(len(statements))
    if not statements:
        reporter.info("the SQL file holds no statements: nothing to run")
        reporter.info("::progress 100")
        return EXIT_OK
    if not dsn:
        return _usage(f"no target database: {DSN_VARIABLE} is not set")
    output_dir = os.environ.get(OUTPUT_VARIABLE)
    result = Path(output_dir, RESULT_NAME) if output_dir else None
    try:
        return asyncio.run(_run_until_signalled(dsn, statements, result, reporter))
    except Exception as exc:  # the process's boundary: never a traceback that may hold the DSN
        reporter.warning(f"the SQL runner failed: {type(exc).__name__}: {scrub(str(exc), dsn)}")
        return EXIT_FAILED


async def _run_until_signalled(
    dsn: str, statements: list[Statement], result: Path | None, reporter: Reporter
) -> int:
    """Runs the file; SIGTERM or SIGINT cancels it (and with it the running statement)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(_run(dsn, statements, result, reporter))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if reporter.current:
            reporter.warning(
                f"stopped by a signal during statement {reporter.current} of {reporter.total}; "
                "the statement was cancelled"
            )
        else:
            reporter.warning("stopped by a signal before the first statement")
        return EXIT_SIGNALLED


async def _run(
    dsn: str, statements: list[Statement], result: Path | None, reporter: Reporter
) -> int:
    try:
        conn = await _connect(dsn, reporter)
    except _CONNECT_ERRORS as exc:
        reporter.warning(f"cannot connect to the target database: {scrub(str(exc), dsn)}")
        return EXIT_CONNECTION
    try:
        return await _run_statements(conn, statements, result, reporter)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        reporter.warning(
            f"the connection was lost during statement {reporter.current} of {reporter.total}: "
            f"{scrub(str(exc), dsn)}"
        )
        return EXIT_CONNECTION
    finally:
        await _close(conn)


async def _connect(dsn: str, reporter: Reporter) -> Any:
    conn = await asyncpg.connect(
        dsn,
        timeout=CONNECT_TIMEOUT,
        statement_cache_size=0,
        server_settings={"application_name": APPLICATION_NAME},
    )
    try:
        conn.add_log_listener(reporter.server_message)
        if conn.get_server_version().major >= 14:
            with contextlib.suppress(asyncpg.PostgresError):  # not on every platform
                await conn.execute(
                    f"SET client_connection_check_interval = '{CLIENT_CHECK_INTERVAL}'"
                )
        database, user = await conn.fetchrow("SELECT current_database(), current_user")
        version = conn.get_settings().server_version
        reporter.info(
            f'connected to database "{database}" as "{user}" '
            f"(PostgreSQL {version}); {_count(reporter.total)}"
        )
    except BaseException:
        conn.terminate()
        raise
    return conn


async def _run_statements(
    conn: Any, statements: list[Statement], result: Path | None, reporter: Reporter
) -> int:
    """Runs the statements in order and stops at the first error."""
    total = len(statements)
    for number, statement in enumerate(statements, 1):
        reporter.starting(number, statement)
        started = time.monotonic()
        pending: _ResultFile | None = None
        try:
            if result is not None and number == total:
                pending = _ResultFile(result)
            done = await execute(conn, statement, pending)
            if pending is not None and done.returns_rows:
                pending.keep()
        except StatementError as failure:
            reporter.failed(failure, statement)
            return EXIT_FAILED
        except RunnerError as exc:
            reporter.runner_error(str(exc), statement)
            return EXIT_FAILED
        finally:
            if pending is not None:
                pending.discard()
        saved = pending is not None and done.returns_rows
        reporter.finished(number, done, saved=saved, seconds=time.monotonic() - started)
    if conn.is_in_transaction():
        reporter.warning("the file ends inside a transaction (no COMMIT): it was rolled back")
    return EXIT_OK


class _ResultFile:
    """Where the last statement's CSV goes until it has succeeded: a temporary file outside
    the output directory (in TMPDIR, the attempt directory), so a runner killed half-way
    leaves no partial result behind to be uploaded. A failed write is a RunnerError."""

    def __init__(self, path: Path) -> None:
        self._path = path
        with _writing():
            handle, temporary = tempfile.mkstemp(prefix="result-", suffix=".csv.partial")
        self._temporary = Path(temporary)
        self._file: IO[bytes] = os.fdopen(handle, "wb")

    def write(self, data: bytes) -> None:
        with _writing():
            self._file.write(data)

    def keep(self) -> None:
        with _writing():
            self._file.close()
            shutil.move(self._temporary, self._path)

    def discard(self) -> None:
        self._file.close()
        self._temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise RunnerError(f"cannot write {RESULT_NAME}: {exc.strerror or exc}") from None


async def _close(conn: Any) -> None:
    try:
        await asyncio.wait_for(conn.close(), CLOSE_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


def _usage(message: str) -> int:
    print(f"sql runner: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def _count(statements: int) -> str:
    return "1 statement" if statements == 1 else f"{statements} statements"
