"""`batchyard results`: list a run's result files and download them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchyard.client.cli.failures import EXIT_OK, UsageError
from batchyard.client.cli.options import (
    add_connection_options,
    add_output_option,
    command_group,
    open_client,
)
from batchyard.client.cli.render import as_datetime, data_text, message_dict, relative_time, table
from batchyard.client.cli.run_views import state_text
from batchyard.client.core.results import RunResult, name_parts
from batchyard.client.core.views import is_finished
from batchyard.client.describe import size_text as size_text
from batchyard.client.errors import NotFoundError
from batchyard.client.sync import Client, RunResults

TABLE_HEADERS = ("NAME", "SIZE", "MEDIA TYPE", "SHA-256", "ATTEMPT", "CREATED")

GROUP_EPILOG = """\
A run's results are the files its job wrote under $BATCHYARD_OUTPUT_DIR, named by
their path below it ("out/a.csv"); those of the run's latest attempt are kept. A SQL
job's result set is the result `result.csv`.

examples:
  batchyard results list 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard results download 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b -o ./out
  batchyard results download 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --name result.csv
"""

LIST_EPILOG = """\
Lists the run's results by name with their size, media type, SHA-256 (its first 12
hex digits in the table), the attempt that wrote them and when. -o json|yaml prints
the RunResult messages (protobuf JSON mapping) with the whole SHA-256.

exit codes:
  0  listed (also when the run has no results: a note on stderr says so)
  1  the server refused, e.g. no such run
  2  wrong command line
  3  the server cannot be reached or did not answer in time

examples:
  batchyard results list 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard results list 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b -o json | jq -r '.[].name'
"""

DOWNLOAD_EPILOG = """\
Here -o (--output-dir) is the directory to write into, not an output format.

Downloads every result into DIR (default: the current directory, created if missing),
keeping the sub-directories of their names: "out/a.csv" becomes DIR/out/a.csv. With
--name, only that result, written as DIR/<its base name> ("out/a.csv" → DIR/a.csv).
Each file is written under a temporary name and renamed into place only once its size
and SHA-256 match the listing; an existing file of the same name is replaced. A name
that would land outside DIR is refused and nothing is written.

Prints each file written, one path per line, on stdout; a summary goes to stderr.

exit codes:
  0  downloaded (also when the run has no results: a note on stderr says so)
  1  the server refused, e.g. no such run or no result of that --name; or a download
     did not match its size or SHA-256 (it was not kept), or a name was unsafe
  2  wrong command line, or DIR cannot be written
  3  the server cannot be reached, did not answer in time, or sent no data for
     --timeout seconds during a download

examples:
  batchyard results download 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard results download 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b -o ./results
  batchyard results download 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --name out/a.csv -o /tmp
"""


def register(subparsers: Any) -> None:
    """Add `results` and its commands to the `batchyard` parser."""
    command = command_group(
        subparsers,
        "results",
        help_text="list and download a run's result files",
        description="List and download the files runs produced.",
        epilog=GROUP_EPILOG,
    )

    list_ = command("list", "list a run's results", LIST_EPILOG)
    list_.add_argument("run", metavar="ID", help="the run's uuid")
    add_connection_options(list_)
    add_output_option(list_)
    list_.set_defaults(handler=list_results)

    download = command("download", "download a run's results", DOWNLOAD_EPILOG)
    download.add_argument("run", metavar="ID", help="the run's uuid")
    download.add_argument(
        "-o",
        "--output-dir",
        metavar="DIR",
        default=".",
        help="the directory to write into (default: the current directory); "
        "not an output format here",
    )
    download.add_argument(
        "--name", metavar="NAME", help="only the result of this name, e.g. out/a.csv"
    )
    add_connection_options(download)
    download.set_defaults(handler=download_results)


def results_table(results: Sequence[RunResult], now: datetime) -> str:
    """NAME, SIZE, MEDIA TYPE, SHA-256 (12 digits), ATTEMPT, CREATED: one row per result."""
    rows = [
        [
            result.name,
            size_text(result.size_bytes),
            result.media_type or "-",
            result.sha256[:12] or "-",
            str(result.attempt),
            relative_time(as_datetime(result.create_time), now),
        ]
        for result in results
    ]
    return table(TABLE_HEADERS, rows)


def list_results(args: argparse.Namespace) -> int:
    """`results list ID [-o FMT]`."""
    with open_client(args) as client:
        results = client.runs.results(args.run)
        if not results:
            print(_no_results(client, args.run), file=sys.stderr)
    if args.output == "table":
        if results:
            print(results_table(results, datetime.now(UTC)))
    else:
        print(data_text([message_dict(result) for result in results], args.output))
    return EXIT_OK


def download_results(args: argparse.Namespace) -> int:
    """`results download ID [-o DIR] [--name NAME]`."""
    directory = Path(args.output_dir)
    with open_client(args) as client:
        results = client.runs.results(args.run)
        if not results and args.name is None:
            print(_no_results(client, args.run), file=sys.stderr)
            return EXIT_OK
        try:
            written = _download(results, directory, args.name)
        except OSError as exc:
            where = exc.filename or directory
            raise UsageError(f"cannot write {where}: {exc.strerror or exc}") from None
    total = sum(result.size_bytes for result, _ in written)
    count = f"{len(written)} result{'s' if len(written) != 1 else ''}"
    print(
        f"downloaded {count} of run {args.run} ({size_text(total)}) into {directory}; "
        "sizes and SHA-256 checked",
        file=sys.stderr,
    )
    return EXIT_OK


def _download(
    results: RunResults, directory: Path, name: str | None
) -> list[tuple[RunResult, Path]]:
    """Download (all, or the one named) and print each path written as it is."""
    written: list[tuple[RunResult, Path]] = []

    def done(result: RunResult, path: Path) -> None:
        written.append((result, path))
        print(path, flush=True)

    if name is None:
        results.download_files(directory, on_file=done)
        return written
    result = results.one(name)  # NotFoundError names the results there are
    name_parts(result.name)  # a name unsafe to write: refused before anything is made
    directory.mkdir(parents=True, exist_ok=True)
    done(result, results.download_file(directory, name=name))
    return written


def _no_results(client: Client, run_id: str) -> str:
    """Why a run has no results, as far as its state tells."""
    try:
        run = client.runs.get(run_id).state
    except NotFoundError:
        return f"run {run_id} has no results"
    if is_finished(run):
        return f"run {run_id} has no results ({state_text(run)}; its job wrote no files)"
    return f"run {run_id} has no results yet ({state_text(run)}; they are stored when it ends)"
