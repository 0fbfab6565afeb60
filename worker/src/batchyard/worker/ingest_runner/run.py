"""An ingest run: list the files, skip those the ledger has, load the rest a few at a time,
and say at the end which files are in and which are not."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchyard.v1 import ingest_pb2
from batchyard.worker.ingest_runner.ledger import Ledger, Table, key_of
from batchyard.worker.ingest_runner.load import Context, FileFailed, load_file
from batchyard.worker.ingest_runner.tasks import Tracker, say, warn
from batchyard.worker.sources.port import ObjectStore, SourceError, StoredObject

MAX_FILES = 100_000
LISTED_SHOWN = 1000
NAMES_SHOWN = 20


@dataclass
class Outcome:
    """Which files are in and which are not."""

    loaded: list[StoredObject] = field(default_factory=list)
    before: list[StoredObject] = field(default_factory=list)
    failed: list[tuple[StoredObject, str]] = field(default_factory=list)
    in_flight: list[StoredObject] = field(default_factory=list)
    rows: int = 0
    bad_rows: int = 0


async def list_files(
    store: ObjectStore, config: ingest_pb2.IngestInput, tracker: Tracker
) -> list[StoredObject]:
    """The objects to load, in key order, filtered by the regex and cut at ``max_files``."""
    pattern = re.compile(config.regex_filter) if config.regex_filter else None
    limit = config.max_files or MAX_FILES
    found: list[StoredObject] = []
    async for item in store.objects():
        if pattern is not None and not pattern.search(item.key):
            continue
        found.append(item)
        tracker.listed = len(found)
        tracker.total_bytes += item.size
        tracker.report()
        if len(found) >= limit:
            if not config.max_files:
                raise SourceError(f"{config.uri} holds more than {MAX_FILES} files to load")
            break
    return found


async def load_all(
    files: list[StoredObject],
    context: Context,
    acquire: Callable[[], Any],
    concurrency: int,
    outcome: Outcome,
) -> None:
    """Loads ``files`` ``concurrency`` at a time; after a failed file no new one starts."""
    queue = list(reversed(files))
    tracker = context.tracker

    async def worker() -> None:
        while queue and not outcome.failed:
            item = queue.pop()
            tracker.pending -= 1
            tracker.running += 1
            tracker.running_bytes[item.uri] = 0
            outcome.in_flight.append(item)
            say(f"loading {item.uri} ({item.size} bytes)")
            try:
                async with acquire() as conn:
                    counts = await load_file(conn, context, item)
            except FileFailed as exc:
                tracker.failed += 1
                tracker.error("LOAD", item.uri, 0, str(exc))
                outcome.failed.append((item, str(exc)))
                warn(f"failed: {exc}")
            else:
                tracker.done += 1
                tracker.done_bytes += item.size
                if counts is None:
                    outcome.before.append(item)
                    say(f"{item.uri}: loaded before (by another run or attempt), skipped")
                else:
                    outcome.loaded.append(item)
                    outcome.rows += counts.rows
                    outcome.bad_rows += counts.bad
                    how = (
                        f", {counts.compression}" if counts.compression not in ("", "none") else ""
                    )
                    bad = f", {counts.bad} bad row(s) skipped" if counts.bad else ""
                    say(f"{item.uri}: {counts.rows} rows loaded{bad}{how}")
            finally:
                outcome.in_flight.remove(item)
                tracker.running -= 1
                tracker.running_bytes.pop(item.uri, None)
                tracker.report()

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))


async def skip_loaded(
    conn: Any, ledger: Ledger, files: list[StoredObject], outcome: Outcome, tracker: Tracker
) -> list[StoredObject]:
    """The files the ledger does not have yet (those it has count as done)."""
    loaded = await ledger.loaded(conn, files) if files else set()
    todo = []
    for item in files:
        if key_of(item) in loaded:
            outcome.before.append(item)
            tracker.done += 1
            tracker.done_bytes += item.size
        else:
            todo.append(item)
    tracker.pending = len(todo)
    if outcome.before:
        say(f"{len(outcome.before)} of {len(files)} file(s) were loaded before: skipped")
    return todo


def show_files(files: list[StoredObject]) -> None:
    total = sum(item.size for item in files)
    say(f"{len(files)} file(s), {total} bytes:")
    for item in files[:LISTED_SHOWN]:
        say(f"  {item.size:>12}  {item.uri}")
    if len(files) > LISTED_SHOWN:
        say(f"  … and {len(files) - LISTED_SHOWN} more")


def final_report(outcome: Outcome, files: list[StoredObject], table: Table) -> None:
    """Which files are in the table and which are not (names cut at NAMES_SHOWN each)."""
    done = {item.uri for item in outcome.loaded + outcome.before}
    failed = {item.uri for item, _ in outcome.failed}
    missing = [item for item in files if item.uri not in done]
    say(
        f"{len(done)} of {len(files)} file(s) are in {table.display}: {len(outcome.loaded)} "
        f"loaded now ({outcome.rows} rows, {outcome.bad_rows} bad rows skipped), "
        f"{len(outcome.before)} before"
    )
    if missing:
        untouched = [item for item in missing if item.uri not in failed]
        warn(f"{len(missing)} file(s) are NOT in {table.display}:")
        for item, reason in outcome.failed[:NAMES_SHOWN]:
            warn(f"  failed: {item.uri}: {reason}")
        for item in untouched[:NAMES_SHOWN]:
            warn(f"  not loaded: {item.uri}")
        hidden = (
            len(missing) - min(len(outcome.failed), NAMES_SHOWN) - min(len(untouched), NAMES_SHOWN)
        )
        if hidden > 0:
            warn(f"  … and {hidden} more")
        warn("running the job again loads only the files that are not in")
