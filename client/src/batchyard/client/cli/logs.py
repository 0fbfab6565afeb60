"""`batchyard logs`: print a run's log, or follow it live until the run ends."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from batchyard.client.cli.failures import EXIT_OK, UsageError
from batchyard.client.cli.log_views import LOG_FORMATS, entry_text, wants_colour
from batchyard.client.cli.options import (
    add_command,
    add_connection_options,
    add_reconnect_option,
    open_client,
    positive_int,
)
from batchyard.client.cli.run_wait import outage_printer
from batchyard.client.core.requests import LEVELS, STREAMS, log_stream
from batchyard.client.sync.streams import until_reachable
from batchyard.v1 import log_pb2

EPILOG = f"""\
Prints the run's log, one line per entry, oldest first (attempt by attempt):
  HH:MM:SS.mmm [attempt] stream LEVEL message
with the time (UTC) the worker read the line, the stream (stdout, stderr, or system:
what the worker did, e.g. attempt started, exit code) and the level (stdout lines are
INFO and stderr lines WARNING unless the line is JSON with a "level" field). On a
terminal lines are coloured by level (not when $NO_COLOR is set). -o json prints one
JSON object per line instead (the protobuf JSON mapping of LogEntry), for jq and
friends; -o yaml one YAML document per entry. Progress lines (`::progress N`) are
not part of the log: see `runs get`.

Without --follow it prints what is stored now and exits. With --follow it then prints
new lines as the job prints them and exits once the run has ended and every line was
printed; if the server restarts meanwhile, it resumes where it was (no line is missed
or printed twice) and gives up after --reconnect-timeout. --new skips what is stored
and prints only what comes from now on.

Levels: {", ".join(LEVELS)} (--level keeps that level and above).
Streams: {", ".join(STREAMS)} (--stream is repeatable, or comma separated).

exit codes:
  0  printed (with --follow: the run has ended and every line was printed)
  1  the server refused, e.g. no such run
  2  wrong command line
  3  the server cannot be reached or did not answer in time (with --follow: for
     longer than --reconnect-timeout)
  130  interrupted (Ctrl-C)

examples:
  batchyard logs 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard logs 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --follow
  batchyard logs 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --level warning --attempt 2
  batchyard logs 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --stream stderr --stream system
  batchyard logs 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --follow --new
  batchyard logs 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b -o json | jq -r .message
"""


def register(subparsers: Any) -> None:
    """Add `logs` to the `batchyard` parser."""
    parser = add_command(subparsers, "logs", help_text="print or follow a run's log", epilog=EPILOG)
    parser.add_argument("run", metavar="ID", help="the run's uuid")
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines until the run ends",
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--since-start",
        action="store_true",
        help="with --follow: print the whole log first (the default)",
    )
    start.add_argument(
        "--new", action="store_true", help="with --follow: only lines added from now on"
    )
    parser.add_argument(
        "--level",
        choices=LEVELS,
        type=str.lower,
        help="only lines at this level or above",
    )
    parser.add_argument(
        "--attempt", metavar="N", type=positive_int, default=0, help="only attempt N"
    )
    parser.add_argument(
        "--stream",
        dest="streams",
        metavar="STREAM",
        type=stream_list,
        action="extend",
        default=[],
        help=f"only lines of this stream ({'|'.join(STREAMS)}; repeatable)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=LOG_FORMATS,
        default="text",
        help="output format: text lines (table is the same), one JSON object per line, "
        "or one YAML document per entry (default: text)",
    )
    add_reconnect_option(parser)
    add_connection_options(parser)
    parser.set_defaults(handler=show_logs)


def stream_list(text: str) -> list[log_pb2.LogStream.ValueType]:
    """An argparse type: 'stdout,stderr' → [LOG_STREAM_STDOUT, LOG_STREAM_STDERR]."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in STREAMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stream {', '.join(unknown) or text!r}; choose from {', '.join(STREAMS)}"
        )
    return [log_stream(name) for name in names]


def show_logs(args: argparse.Namespace) -> int:
    """`logs ID [--follow [--new]] [--level L] [--attempt N] [--stream S]... [-o FMT]`."""
    if (args.new or args.since_start) and not args.follow:
        raise UsageError(f"{'--new' if args.new else '--since-start'} needs --follow")
    filters = {"attempt": args.attempt, "min_level": args.level, "streams": args.streams}
    colour = args.output in ("text", "table") and wants_colour(sys.stdout)
    with open_client(args) as client:
        logs = client.logs
        if not args.follow:
            for entry in logs.iter(args.run, **filters):
                print(entry_text(entry, args.output, colour=colour))
            return EXIT_OK
        # A quick call first, so that an unknown run is reported at once; a server
        # that cannot be reached is waited for (--reconnect-timeout), saying so.
        say_outage = outage_printer(sys.stderr)
        until_reachable(
            lambda: logs.page(args.run, page_size=1, **filters),
            reconnect_timeout=args.reconnect_timeout,
            on_outage=say_outage,
        )
        follower = logs.follow(
            args.run,
            only_new=args.new,
            reconnect_timeout=args.reconnect_timeout,
            on_outage=say_outage,
            **filters,
        )
        for entry in follower:
            print(entry_text(entry, args.output, colour=colour), flush=True)
    return EXIT_OK
