"""`batchyard sql`: run an ad-hoc SQL query on a worker's target database; with --wait,
print its result table."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any

from batchyard.client.cli.failures import EXIT_OK, EXIT_REFUSED, EXIT_WAIT_TIMEOUT, UsageError
from batchyard.client.cli.log_views import entry_line, wants_colour
from batchyard.client.cli.options import (
    add_command,
    add_connection_options,
    add_reconnect_option,
    add_request_id_option,
    add_wait_timeout_option,
    duration_seconds,
    non_negative_int,
    open_client,
)
from batchyard.client.cli.render import to_yaml
from batchyard.client.cli.run_views import outcome_lines
from batchyard.client.cli.run_wait import exit_code, wait_to_end
from batchyard.client.core.requests import SQL_RESULT_NAME
from batchyard.client.errors import BatchyardError
from batchyard.client.sync import Client, Run
from batchyard.v1 import run_pb2

# What the SQL job writes.
RESULT_NAME = SQL_RESULT_NAME
# The largest query the server accepts (inline source text, UTF-8).
MAX_QUERY_BYTES = 1024 * 1024
SQL_FORMATS = ("table", "csv", "json", "yaml")
DEFAULT_MAX_ROWS = 100
# The downloaded result stays in memory up to this size, then moves to a temporary file.
SPOOL_BYTES = 8 * 1024 * 1024
# Table cells longer than this are cut, with "…".
MAX_CELL_CHARS = 80
# The largest CSV field read (the csv module's default is 128 KiB).
MAX_CELL_BYTES = 256 * 1024 * 1024
# How many log lines (warning and above) a failed query shows.
LOG_TAIL_LINES = 20

EPILOG = f"""\
Submits an ad-hoc SQL run (no definition needed): the query's statements run, in
order, on a worker against the database the worker's operator configured under
--target NAME (`batchyard worker --sql-target NAME=DSN`, or the environment variable
BATCHYARD_SQL_TARGET_<NAME>); never the service's own database. The run stops at the
first error. The result set of the last statement is kept as the run's result
`{RESULT_NAME}` (see `batchyard results`).

The query is the QUERY argument, or the contents of --file FILE (- for stdin).

Without --wait it prints the run's uuid and exits. With --wait it follows the run (its
state on stderr, as `runs submit --wait` shows it) and then prints the result set on
stdout: at most --max-rows rows (default {DEFAULT_MAX_ROWS}; a note on stderr says when
there were more), or every row with --all-rows. -o table (default) aligns columns and
cuts cells over {MAX_CELL_CHARS} characters; -o csv prints the CSV as stored; -o json
prints {{"columns": [...], "rows": [[...], ...], "truncated": false}}, -o yaml the same
as YAML. Values are text, as in the CSV. If the query fails, how it ended and the last
lines of its log (warning and above) are printed on stderr.

exit codes:
  0  submitted (with --wait: the query succeeded and its result was printed)
  1  the server refused the run (e.g. a bad option, the field is named); with --wait:
     the query failed, or its result did not match its SHA-256
  2  wrong command line, or the query file cannot be read
  3  the server cannot be reached or did not answer in time (with --wait: for longer
     than --reconnect-timeout)
  4  with --wait: the run was cancelled
  5  with --wait: --wait-timeout passed before the run ended (the run goes on)
  130  interrupted (Ctrl-C; a submitted run goes on)

examples:
  batchyard sql "SELECT count(*) FROM orders" --target warehouse --wait
  batchyard sql "SELECT * FROM orders WHERE day = current_date" --target warehouse \\
      --wait -o csv --all-rows > today.csv
  batchyard sql --file report.sql --target warehouse --wait --timeout 15m
  echo "SELECT now()" | batchyard sql --file - --target warehouse --wait -o json
  batchyard sql "VACUUM ANALYZE orders" --target warehouse
"""  # noqa: S608  (help text, not a query)


def register(subparsers: Any) -> None:
    """Add `sql` to the `batchyard` parser."""
    parser = add_command(
        subparsers,
        "sql",
        help_text="run an ad-hoc SQL query on a target database",
        epilog=EPILOG,
    )
    parser.add_argument("query", metavar="QUERY", nargs="?", help="the SQL to run")
    parser.add_argument("-f", "--file", metavar="FILE", help="read the SQL from FILE (- for stdin)")
    parser.add_argument(
        "--target",
        metavar="NAME",
        required=True,
        help="the database connection configured on the workers under this name",
    )
    parser.add_argument(
        "--timeout",
        dest="run_timeout",
        metavar="SECONDS",
        type=duration_seconds,
        help="time limit of the query, e.g. 90s, 15m (default 60 min; the call deadline "
        "is --request-timeout)",
    )
    parser.add_argument("--queue", metavar="Q", help="the queue to run in")
    add_request_id_option(parser)
    parser.add_argument(
        "--wait", action="store_true", help="wait for the run, then print the result"
    )
    add_wait_timeout_option(parser)
    rows = parser.add_mutually_exclusive_group()
    rows.add_argument(
        "--max-rows",
        metavar="N",
        type=non_negative_int,
        help=f"with --wait: print at most N rows (default: {DEFAULT_MAX_ROWS})",
    )
    rows.add_argument("--all-rows", action="store_true", help="with --wait: print every row")
    parser.add_argument(
        "-o",
        "--output",
        choices=SQL_FORMATS,
        help="with --wait: how to print the result set (default: table)",
    )
    add_reconnect_option(parser)
    add_connection_options(parser, short_timeout=False)
    parser.set_defaults(handler=run_sql)


def run_sql(args: argparse.Namespace) -> int:
    """`sql QUERY | --file FILE --target NAME [--wait [...]]`."""
    if not args.wait:
        given = [
            flag
            for flag, value in (
                ("--wait-timeout", args.wait_timeout),
                ("--max-rows", args.max_rows),
                ("--all-rows", args.all_rows or None),
                ("-o", args.output),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{given[0]} needs --wait")
    query = _read_query(args)
    with open_client(args) as client:
        handle = client.sql(
            query,
            target=args.target,
            timeout=args.run_timeout,
            queue=args.queue,
            request_id=args.request_id,
        )
        run = handle.state
        if not args.wait:
            print(run.uuid)
            hint = f"see: batchyard runs watch {run.uuid}"
            print(f"submitted run {run.uuid}; {hint}", file=sys.stderr)
            return EXIT_OK
        final = wait_to_end(handle, args)
        if final is None:
            return EXIT_WAIT_TIMEOUT
        if final.status != run_pb2.RUN_STATUS_SUCCEEDED:
            print("\n".join(outcome_lines(final)), file=sys.stderr)
            if final.status == run_pb2.RUN_STATUS_FAILED:
                _print_log_tail(client, final)
            return exit_code(final)
        return _show_result(handle, args)


def _show_result(handle: Run, args: argparse.Namespace) -> int:
    """Download result.csv into memory-bounded temporary storage and print it."""
    run_id = handle.id
    results = handle.results()
    if RESULT_NAME not in results:
        print(f"(no result set: the run has no {RESULT_NAME})", file=sys.stderr)
        return EXIT_OK
    limit = None if args.all_rows else args.max_rows
    if limit is None and not args.all_rows:
        limit = DEFAULT_MAX_ROWS
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b") as spool:
        results.download_to(spool, RESULT_NAME)
        text = io.TextIOWrapper(spool, encoding="utf-8", errors="replace", newline="")
        try:
            print_result(text, args.output or "table", limit)
        except csv.Error as exc:
            print(f"error: cannot read {RESULT_NAME} as CSV: {exc}", file=sys.stderr)
            print(
                f"hint: download it as it is: batchyard results download {run_id} "
                f"--name {RESULT_NAME}",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        finally:
            text.detach()  # the spool closes itself
    return EXIT_OK


def _read_query(args: argparse.Namespace) -> str:
    if (args.query is None) == (args.file is None):
        raise UsageError("give the query either as QUERY or with --file FILE (- for stdin)")
    if args.file is None:
        query: str = args.query
    elif args.file == "-":
        query = sys.stdin.read()
    else:
        try:
            query = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise UsageError(f"cannot read {args.file}: {why}") from None
    if not query.strip():
        raise UsageError("the query is empty")
    if len(query.encode()) > MAX_QUERY_BYTES:
        raise UsageError("the query is over 1 MiB")
    return query


def _print_log_tail(client: Client, run: run_pb2.Run) -> None:
    """The last lines (warning and above) of the run's last attempt, on stderr."""
    attempt = run.attempts[-1].number if run.attempts else 0
    try:
        tail = deque(
            client.logs.iter(run.uuid, attempt=attempt, min_level="warning"),
            maxlen=LOG_TAIL_LINES,
        )
    except BatchyardError as exc:
        print(f"(cannot read the run's log: {exc.message})", file=sys.stderr)
        return
    if not tail:
        return
    where = f" of attempt {attempt}" if attempt else ""
    print(f"last lines of the log{where} (warning and above):", file=sys.stderr)
    colour = wants_colour(sys.stderr)
    for entry in tail:
        print("  " + entry_line(entry, colour=colour), file=sys.stderr)


def _records(text: IO[str]) -> tuple[list[str] | None, Iterator[list[str]]]:
    """The CSV's header (None for an empty file) and an iterator over its rows, read
    from the start."""
    text.seek(0)
    reader = csv.reader(text)
    return next(reader, None), reader


def _cell(value: str) -> str:
    """A table cell on one line, cut at MAX_CELL_CHARS."""
    flat = value.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return flat if len(flat) <= MAX_CELL_CHARS else flat[: MAX_CELL_CHARS - 1] + "…"


def print_result(text: IO[str], output: str, limit: int | None) -> None:
    """Print the CSV result set in `text` as `output` asks ("table", "csv", "json" or
    "yaml"),
    at most `limit` rows (None: all), then the row count on stderr. Reads the file a few
    times rather than keeping it in memory."""
    # A cell may be large (a JSON document, a long text): allow up to the CSV's size.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_BYTES))
    header, rows = _records(text)
    if header is None:
        print("(no result set: the last statement returned none)", file=sys.stderr)
        return
    total = sum(1 for _ in rows)
    shown = total if limit is None else min(total, limit)
    out = sys.stdout
    if output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(islice(_records(text)[1], shown))
    elif output == "json":
        out.write('{"columns": ' + json.dumps(header, ensure_ascii=False) + ', "rows": [')
        for i, row in enumerate(islice(_records(text)[1], shown)):
            out.write(("," if i else "") + "\n  " + json.dumps(row, ensure_ascii=False))
        out.write(("\n" if shown else "") + f'], "truncated": {json.dumps(shown < total)}}}\n')
    elif output == "yaml":
        rows_shown = [list(row) for row in islice(_records(text)[1], shown)]
        value = {"columns": header, "rows": rows_shown, "truncated": shown < total}
        print(to_yaml(value), file=out)
    else:
        _print_table(text, header, shown, out)
    noun = "row" if total == 1 else "rows"
    if shown < total:
        print(
            f"(showing the first {shown} of {total} {noun}; use --max-rows N or --all-rows "
            "for more)",
            file=sys.stderr,
        )
    else:
        print(f"({total} {noun})", file=sys.stderr)


def _print_table(text: IO[str], header: list[str], shown: int, out: IO[str]) -> None:
    """Aligned columns, two spaces apart: one pass for the widths, one to print."""
    widths = [len(_cell(name)) for name in header]
    for row in islice(_records(text)[1], shown):
        for i, value in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(_cell(value)))
    print(_line(header, widths), file=out)
    for row in islice(_records(text)[1], shown):
        print(_line(row, widths), file=out)


def _line(row: list[str], widths: list[int]) -> str:
    cells = [_cell(value) for value in row] + [""] * (len(widths) - len(row))
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)).rstrip()
