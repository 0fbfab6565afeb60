"""The runner's process: configuration and DSN from the environment, then the run.

Exit codes: 0 every file is in the table (or the dry run found nothing wrong); 1 a file
failed, or the table, the ledger, the mapping or the listing did not fit (the files loaded
stay loaded); 2 the invocation was wrong; 3 the target database could not be reached or
the connection was lost; 143 (128 + SIGTERM) stopped by a signal — the files in flight
rolled back, those done stay done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

import asyncpg
from google.protobuf import json_format

from batchyard.v1 import ingest_pb2, job_pb2
from batchyard.worker.ingest_runner.dry_run import check_first_file
from batchyard.worker.ingest_runner.ledger import Ledger, Table, TargetError, describe_table
from batchyard.worker.ingest_runner.load import BadRows, Context
from batchyard.worker.ingest_runner.run import (
    Outcome,
    final_report,
    list_files,
    load_all,
    show_files,
    skip_loaded,
)
from batchyard.worker.ingest_runner.tasks import Tracker, say, warn
from batchyard.worker.sources.port import SourceError
from batchyard.worker.sources.s3_objects import S3Objects
from batchyard.worker.sql_runner.secrecy import scrub

DSN_VARIABLE = "BATCHYARD_SQL_DSN"
CONFIG_VARIABLE = "BATCHYARD_INGEST_CONFIG"
"""The job's IngestConfig in protobuf JSON (the worker sets it)."""
APPLICATION_NAME = "batchyard-ingest-job"
CONNECT_TIMEOUT = 30.0
STOP_GRACE = 1.5
"""How long a stopped run may take to roll its files in flight back before the runner drops
its connections (the database then rolls them back itself)."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECTION = 0, 1, 2, 3
EXIT_SIGNALLED = 128 + signal.SIGTERM
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


def main(argv: list[str]) -> int:
    """``python -m batchyard.worker.ingest_runner`` (no arguments)."""
    dsn = os.environ.pop(DSN_VARIABLE, "")
    if argv:
        return _usage("an ingest job takes no arguments")
    if not dsn:
        return _usage(f"no target database: {DSN_VARIABLE} is not set")
    try:
        config = json_format.Parse(os.environ.get(CONFIG_VARIABLE, ""), ingest_pb2.IngestConfig())
    except json_format.ParseError as exc:
        return _usage(f"{CONFIG_VARIABLE} is not an IngestConfig: {exc}")
    run = os.environ.get("BATCHYARD_RUN_ID", "")
    attempt = int(os.environ.get("BATCHYARD_ATTEMPT", "0") or 0)
    tracker = Tracker()
    try:
        return asyncio.run(_until_signalled(dsn, config, run, attempt, tracker))
    except Exception as exc:  # the process's boundary: never a traceback that may hold the DSN
        warn(f"the ingest runner failed: {type(exc).__name__}: {scrub(str(exc), dsn)}")
        return EXIT_FAILED


async def _until_signalled(
    dsn: str, config: ingest_pb2.IngestConfig, run: str, attempt: int, tracker: Tracker
) -> int:
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    pools: list[Any] = []
    task = asyncio.ensure_future(_run(dsn, config, run, attempt, tracker, outcome, pools))
    in_flight: list[Any] = []

    def stop() -> None:
        if not in_flight:
            in_flight.extend(outcome.in_flight or [None])
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, STOP_GRACE)
        for pool in pools:
            pool.terminate()
        done = len(outcome.loaded) + len(outcome.before)
        names = ", ".join(item.uri for item in in_flight[:20] if item is not None) or "none"
        warn(
            f"stopped by a signal: {done} file(s) are in, {len(outcome.loaded)} of them loaded "
            f"by this run ({outcome.rows} rows); rolled back the file(s) in flight: {names}"
        )
        tracker.report(force=True)
        return EXIT_SIGNALLED


async def _run(
    dsn: str,
    config: ingest_pb2.IngestConfig,
    run: str,
    attempt: int,
    tracker: Tracker,
    outcome: Outcome,
    pools: list[Any],
) -> int:
    concurrency = max(1, config.input_concurrency)
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=concurrency + 1,  # one for listing and the ledger, one per file
            timeout=CONNECT_TIMEOUT,
            statement_cache_size=0,
            server_settings={"application_name": APPLICATION_NAME},
        )
    except (*_CONNECTION_ERRORS, TimeoutError, ValueError, asyncpg.PostgresError) as exc:
        warn(f"cannot connect to the target database: {scrub(str(exc), dsn)}")
        return EXIT_CONNECTION
    pools.append(pool)
    try:
        return await _ingest(pool, config, run, attempt, tracker, outcome)
    except _CONNECTION_ERRORS as exc:
        warn(f"the connection to the target database was lost: {scrub(str(exc), dsn)}")
        return EXIT_CONNECTION
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pool.close(), 5.0)


async def _ingest(
    pool: Any,
    config: ingest_pb2.IngestConfig,
    run: str,
    attempt: int,
    tracker: Tracker,
    outcome: Outcome,
) -> int:
    source = job_pb2.S3Source(
        uri=config.input.uri, region=config.input.region, endpoint_url=config.input.endpoint_url
    )
    async with pool.acquire() as conn:
        try:
            table = await describe_table(conn, config.table)
            ledger = Ledger(table, config.ledger_table)
            has_ledger = await ledger.ensure(conn, create=not config.dry_run)
        except TargetError as exc:
            warn(f"cannot load into {config.table}: {exc}")
            return EXIT_FAILED
        say(f"loading into {table.display} (ledger {ledger.name}) from {config.input.uri}")
        try:
            async with S3Objects(source) as store:
                files = await list_files(store, config.input, tracker)
                tracker.listing = False
                if not files:
                    warn(f"no files to load: nothing below {config.input.uri}" + _matching(config))
                    tracker.report(force=True)
                    return EXIT_FAILED
                todo = (
                    await skip_loaded(conn, ledger, files, outcome, tracker)
                    if has_ledger
                    else files
                )
                tracker.pending = len(todo)
                tracker.report(force=True)
                if config.dry_run:
                    show_files(files)
                    return await _dry_run(config, table, store, files, len(files) - len(todo))
                limit = (
                    config.error_policy.skip_rows.max_bad_rows
                    if config.error_policy.WhichOneof("policy") == "skip_rows"
                    else None
                )
                context = Context(
                    config, table, ledger, store, tracker, BadRows(limit, tracker), run, attempt
                )
                await load_all(todo, context, pool.acquire, config.input_concurrency, outcome)
        except SourceError as exc:
            tracker.listing_failed = tracker.listing
            tracker.listing = False
            tracker.error("LIST", config.input.uri, 0, str(exc))
            tracker.report(force=True)
            warn(str(exc))
            final_report(outcome, [], table)
            return EXIT_FAILED
    tracker.report(force=True)
    final_report(outcome, files, table)
    return EXIT_FAILED if outcome.failed else EXIT_OK


async def _dry_run(
    config: ingest_pb2.IngestConfig, table: Table, store: Any, files: list[Any], before: int
) -> int:
    if before:
        say(f"{before} of them are in {table.display} already (by the ledger) and would be skipped")
    fits = await check_first_file(config, table, store, files[0])
    say("dry run: nothing was loaded")
    return EXIT_OK if fits else EXIT_FAILED


def _matching(config: ingest_pb2.IngestConfig) -> str:
    return f" matching {config.input.regex_filter!r}" if config.input.regex_filter else ""


def _usage(message: str) -> int:
    print(f"ingest runner: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE
