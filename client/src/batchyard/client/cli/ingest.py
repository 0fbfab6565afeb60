"""`batchyard ingest`: load files from S3 into a table of a worker's target database, each
file exactly once (an ad-hoc INGEST run, like `batchyard sql`).

The SDK, gRPC and protobuf are imported inside the functions: `batchyard --help` and the
other commands do not pay for them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

FORMATS = ("csv", "ndjson")

EPILOG = """\
Submits an ad-hoc INGEST run (no definition needed): a worker lists the S3 object or
every object below the prefix URI (ending in /), keeps the keys matching --regex (at
most --max-files, in key order), and streams each file into TABLE ("schema.table") of
the database the worker's operator configured under --target NAME (as for
`batchyard sql`; never the service's own database). gzip and zstd files are recognised
by name or content. Each file is loaded in one transaction together with its row in a
ledger table in that database (default: <schema>.batchyard_ingest_ledger, created when
missing), so a file is never loaded twice: running the same command again loads only
the files that are not in yet. S3 credentials are the worker's.

CSV files have a header naming the table's columns unless --no-header (then the
columns are the table's, in order); an empty field is NULL (or --null TEXT). NDJSON
files hold one object a line; each table column without a default takes the key of its
name. --column NAME=SOURCE maps a column to a CSV header name (or 1-based number) or
a JSON path such as user.address.city (repeatable; then only those columns are
loaded). Values are converted to the column's type; a row that does not fit fails the
run (its file rolls back, files loaded stay), or with --max-bad-rows N up to N such
rows are skipped, each logged with its file, line and message.

--dry-run lists the files with their sizes, shows the first file's columns (inferred
from its first rows) and the mapping, checks the table, and loads nothing.

Without --wait it prints the run's uuid and exits. With --wait it follows the run (its
state and task counts on stderr) and prints how it ended.

exit codes:
  0  submitted (with --wait: every file is in the table, or the dry run fit)
  1  the server refused the run (the field is named); with --wait: the run failed
  2  wrong command line
  3  the server cannot be reached or did not answer in time
  4  with --wait: the run was cancelled
  5  with --wait: --wait-timeout passed before the run ended (the run goes on)

examples:
  batchyard ingest s3://lake/events/2024/ --target warehouse --table analytics.events \\
      --regex '\\.csv(\\.gz)?$' --wait
  batchyard ingest s3://lake/events/2024/ --target warehouse --table analytics.events \\
      --dry-run --wait
  batchyard ingest s3://lake/clicks.ndjson.zst --target warehouse --table clicks \\
      --format ndjson --column user_id=user.id --column url=page.url --wait
"""


def register(subparsers: Any) -> None:
    """Add `ingest` to the `batchyard` parser."""
    from batchyard.client.cli import options

    parser = options.add_command(
        subparsers,
        "ingest",
        help_text="load files from S3 into a table, each file exactly once",
        epilog=EPILOG,
    )
    parser.add_argument("uri", metavar="URI", help="s3://bucket/key or s3://bucket/prefix/")
    parser.add_argument(
        "--target", metavar="NAME", required=True, help="the workers' database connection"
    )
    parser.add_argument("--table", metavar="TABLE", required=True, help="schema.table to load into")
    parser.add_argument(
        "--format", choices=FORMATS, default="csv", help="file format (default csv)"
    )
    parser.add_argument("--regex", metavar="RE", default="", help="load only keys matching RE")
    parser.add_argument(
        "--max-files",
        metavar="N",
        type=options.non_negative_int,
        default=0,
        help="load at most N files, in key order (default: all)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list, infer and check; load nothing"
    )
    parser.add_argument(
        "--concurrency",
        metavar="N",
        type=options.non_negative_int,
        default=0,
        help="files loaded at once (1 to 16; default 1)",
    )
    parser.add_argument(
        "--max-bad-rows",
        metavar="N",
        type=options.non_negative_int,
        help="skip up to N bad rows (default: fail at the first)",
    )
    parser.add_argument(
        "--column",
        metavar="NAME[=SOURCE]",
        action="append",
        default=[],
        help="map a table column to a CSV column or JSON path (repeatable)",
    )
    parser.add_argument("--no-header", action="store_true", help="CSV files have no header line")
    parser.add_argument("--delimiter", metavar="C", default="", help="CSV delimiter (default ,)")
    parser.add_argument("--null", metavar="TEXT", default="", help="CSV text that means NULL")
    parser.add_argument("--region", default="", help="the bucket's region")
    parser.add_argument("--endpoint-url", default="", help="an S3-compatible store's endpoint")
    parser.add_argument(
        "--timeout",
        dest="run_timeout",
        metavar="SECONDS",
        type=options.duration_seconds,
        help="time limit of the run, e.g. 90s, 2h (default 60 min)",
    )
    parser.add_argument("--queue", metavar="Q", help="the queue to run in")
    options.add_request_id_option(parser)
    parser.add_argument("--wait", action="store_true", help="wait for the run to end")
    options.add_wait_timeout_option(parser)
    options.add_reconnect_option(parser)
    options.add_connection_options(parser, short_timeout=False)
    parser.set_defaults(handler=run_ingest)


def _columns(specs: list[str]) -> list[Any]:
    from batchyard.client.cli.failures import UsageError
    from batchyard.v1 import ingest_pb2

    out = []
    for spec in specs:
        name, _, source = spec.partition("=")
        if not name:
            raise UsageError(f"--column {spec!r}: expected NAME or NAME=SOURCE")
        out.append(ingest_pb2.IngestColumn(name=name, source=source))
    return out


def run_ingest(args: argparse.Namespace) -> int:
    """`ingest URI --target NAME --table TABLE [...] [--wait]`."""
    from batchyard.client.cli.failures import EXIT_OK, EXIT_WAIT_TIMEOUT, UsageError
    from batchyard.client.cli.options import open_client
    from batchyard.client.cli.run_views import outcome_lines
    from batchyard.client.cli.run_wait import exit_code, wait_to_end
    from batchyard.client.describe import tasks_text
    from batchyard.v1 import ingest_pb2

    if args.wait_timeout is not None and not args.wait:
        raise UsageError("--wait-timeout needs --wait")
    csv = ingest_pb2.CsvFormat(delimiter=args.delimiter, null_string=args.null)
    if args.no_header:
        csv.header = False
    with open_client(args) as client:
        handle = client.ingest(
            args.uri,
            target=args.target,
            table=args.table,
            format=args.format,
            regex=args.regex,
            max_files=args.max_files,
            dry_run=args.dry_run,
            max_bad_rows=args.max_bad_rows,
            timeout=args.run_timeout,
            queue=args.queue,
            request_id=args.request_id,
            columns=_columns(args.column),
            csv=csv,
            input_concurrency=args.concurrency,
            region=args.region,
            endpoint_url=args.endpoint_url,
        )
        run = handle.state
        if not args.wait:
            print(run.uuid)
            print(
                f"submitted run {run.uuid}; see: batchyard runs watch {run.uuid}", file=sys.stderr
            )
            return EXIT_OK
        final = wait_to_end(handle, args)
        if final is None:
            return EXIT_WAIT_TIMEOUT
        print("\n".join(outcome_lines(final)), file=sys.stderr)
        if final.HasField("tasks"):
            print(f"tasks: {tasks_text(final.tasks)}", file=sys.stderr)
            for error in final.tasks.errors:
                line = f" line {error.line}" if error.line else ""
                print(f"  {error.task}{line}: {error.message}", file=sys.stderr)
        print(run.uuid)
        return exit_code(final)
