"""`batchyard runs`: submit, get, list, watch, cancel and delete runs."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from functools import partial
from typing import Any

from batchyard.client.cli import retention, run_submit
from batchyard.client.cli.failures import EXIT_OK
from batchyard.client.cli.log_views import wants_colour
from batchyard.client.cli.options import (
    add_amount_options,
    add_connection_options,
    add_output_option,
    add_reconnect_option,
    add_wait_timeout_option,
    command_group,
    open_client,
)
from batchyard.client.cli.render import data_text, message_dict, print_listing
from batchyard.client.cli.run_views import (
    STATUSES,
    run_details,
    run_output,
    runs_table,
    state_text,
)
from batchyard.client.cli.run_wait import outage_printer, wait_for_run
from batchyard.client.sync.streams import until_reachable
from batchyard.v1 import run_pb2

DEFAULT_LIMIT = 50

GROUP_EPILOG = """\
A run is one execution request of a definition: it pins the definition's version at
submit time, plus per-run changes (args, env, timeout, retries, queue, priority) and
an optional payload. Runs are named by their uuid.

examples:
  batchyard runs submit hello --arg=--greeting --arg=bonjour --wait
  batchyard runs list --status pending,running
  batchyard runs get 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard runs watch 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --follow
  batchyard runs cancel 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --reason "wrong day"
  batchyard runs delete 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
"""

GET_EPILOG = """\
Shows the run's status and why, its effective configuration, progress, times and every
attempt. -o json|yaml prints the Run message (protobuf JSON mapping).

examples:
  batchyard runs get 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard runs get 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b -o json | jq .status
"""

LIST_EPILOG = f"""\
Runs are listed newest first. Without --all, at most --limit of them are shown
(default {DEFAULT_LIMIT}) and a note on stderr says when there are more.
Statuses: {", ".join(STATUSES)}.

examples:
  batchyard runs list
  batchyard runs list --definition hello --status failed
  batchyard runs list --status pending,running --limit 10
  batchyard runs list --all -o json
"""

WATCH_EPILOG = """\
Follows a run (submitted earlier, e.g. without --wait) until it ends, as
`runs submit --wait` does, and prints how it ended. Its state (status, attempt,
progress) is shown on stderr: on a terminal as one live line with a progress bar, e.g.
  0:00:36 Run <uuid>: running (attempt 1, 40%) [########------------]
otherwise as one line per change:
  0:00:00 Run <uuid>: pending (in queue)
  0:00:02 Run <uuid>: running (attempt 1)
  0:00:36 Run <uuid>: running (attempt 1, 40%)
--follow also prints the run's log as it comes (as `batchyard logs --follow` does) on
stdout, or on stderr with -o json|yaml. -o json|yaml prints the final Run message. If
the server restarts meanwhile, watching resumes where it was (see --reconnect-timeout).
A run that has already ended is shown at once.

exit codes:
  0  the run succeeded
  1  the run failed, or the server refused (e.g. no such run)
  2  wrong command line
  3  the server cannot be reached, or stayed unreachable for --reconnect-timeout
  4  the run was cancelled
  5  --wait-timeout passed before the run ended (the run goes on)
  130  interrupted (Ctrl-C; the run goes on)

examples:
  batchyard runs watch 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard runs watch 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --follow
  batchyard runs watch 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --wait-timeout 10m -o json
"""

CANCEL_EPILOG = """\
A pending run is cancelled at once. A running run is asked to stop: its worker learns
it at its next heartbeat, stops the job and the run becomes cancelled. Finished runs
cannot be cancelled (exit code 1).

examples:
  batchyard runs cancel 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
  batchyard runs cancel 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b --reason "wrong input"
"""

DELETE_EPILOG = """\
Deletes a finished run (succeeded, failed or cancelled) with its logs and results.
Cancel a pending or running run first.

examples:
  batchyard runs delete 0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b
"""


def register(subparsers: Any) -> None:
    """Add `runs` and its commands to the `batchyard` parser."""
    command = command_group(
        subparsers,
        "runs",
        help_text="submit, get, list, watch, cancel and delete runs",
        description="Submit runs of job definitions and follow them.",
        epilog=GROUP_EPILOG,
    )

    submit = command("submit", "submit a run of a definition", run_submit.EPILOG)
    run_submit.add_arguments(submit)
    add_connection_options(submit, short_timeout=False)
    add_output_option(submit, default=None)
    submit.set_defaults(handler=run_submit.submit_run)

    get = command("get", "show one run with its attempts", GET_EPILOG)
    get.add_argument("run", metavar="ID", help="the run's uuid")
    add_connection_options(get)
    add_output_option(get)
    get.set_defaults(handler=get_run)

    list_ = command("list", "list runs, newest first", LIST_EPILOG)
    _add_list_options(list_)
    add_connection_options(list_)
    add_output_option(list_)
    list_.set_defaults(handler=list_runs)

    watch = command("watch", "follow a run until it ends", WATCH_EPILOG)
    watch.add_argument("run", metavar="ID", help="the run's uuid")
    watch.add_argument("--follow", action="store_true", help="also print the run's log as it comes")
    add_wait_timeout_option(watch, "stop watching")
    add_reconnect_option(watch)
    add_connection_options(watch)
    add_output_option(watch, default=None)
    watch.set_defaults(handler=watch_run)

    cancel = command("cancel", "cancel a pending or running run", CANCEL_EPILOG)
    cancel.add_argument("run", metavar="ID", help="the run's uuid")
    cancel.add_argument("--reason", default="", help="why, kept in the run's message")
    add_connection_options(cancel)
    add_output_option(cancel, default=None)
    cancel.set_defaults(handler=cancel_run)

    delete = command("delete", "delete a finished run", DELETE_EPILOG + retention.BULK_EPILOG)
    delete.add_argument("run", metavar="ID", nargs="?", help="the run's uuid")
    retention.add_delete_filters(delete)
    add_connection_options(delete)
    delete.set_defaults(handler=delete_run)


def status_list(text: str) -> list[str]:
    """An argparse type: 'pending,running' → ["pending", "running"] (checked)."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in STATUSES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown status {', '.join(unknown) or text!r}; choose from {', '.join(STATUSES)}"
        )
    return names


def _add_list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--definition",
        metavar="REF",
        default="",
        help="only runs of this definition (name or uuid)",
    )
    parser.add_argument(
        "--status",
        metavar="STATUS,...",
        type=status_list,
        action="extend",
        default=[],
        help="only runs in one of these statuses (repeatable)",
    )
    parser.add_argument(
        "--parent", metavar="ID", default="", help="only the children of this array run"
    )
    parser.add_argument(
        "--include-children",
        action="store_true",
        help="also list the children of array runs (left out by default)",
    )
    add_amount_options(parser, "runs", DEFAULT_LIMIT)


def get_run(args: argparse.Namespace) -> int:
    """`runs get ID`."""
    with open_client(args) as client:
        run = client.runs.get(args.run).state
    if args.output == "table":
        print(run_details(run, datetime.now(UTC)))
    else:
        print(data_text(message_dict(run), args.output))
    return EXIT_OK


def list_runs(args: argparse.Namespace) -> int:
    """`runs list [--definition REF] [--status S,...] [--limit N | --all]`."""
    limit = None if args.all else args.limit
    with open_client(args) as client:
        listed = client.runs.list(
            definition=args.definition,
            status=args.status,
            limit=None if limit is None else limit + 1,  # one more tells if there are more
            page_size=args.page_size,
            parent=args.parent,
            include_children=args.include_children,
        )
        found = [run.state for run in listed]
    table_of = partial(runs_table, now=datetime.now(UTC), colour=wants_colour(sys.stdout))
    print_listing(found, limit, args.output, table_of, noun="runs", order="newest")
    return EXIT_OK


def watch_run(args: argparse.Namespace) -> int:
    """`runs watch ID [--follow] [--wait-timeout S]`."""
    with open_client(args) as client:
        # An unknown run fails now; a server that cannot be reached is waited for.
        run = until_reachable(
            lambda: client.runs.get(args.run),
            reconnect_timeout=args.reconnect_timeout,
            on_outage=outage_printer(sys.stderr),
        )
        return wait_for_run(
            run,
            timeout=args.wait_timeout,
            output=args.output,
            follow=args.follow,
            reconnect_timeout=args.reconnect_timeout,
        )


def cancel_run(args: argparse.Namespace) -> int:
    """`runs cancel ID [--reason TEXT]`."""
    with open_client(args) as client:
        run = client.runs.cancel(args.run, args.reason).state
    if args.output is not None:
        print(run_output(run, args.output, datetime.now(UTC)))
    elif run.status == run_pb2.RUN_STATUS_RUNNING and run.cancel_requested:
        print(f"run {run.uuid}: cancel requested; the worker is stopping it")
    else:
        print(f"run {run.uuid}: {state_text(run)}")
    return EXIT_OK


def delete_run(args: argparse.Namespace) -> int:
    """`runs delete ID` (or, with filters, `runs delete --older-than ...`)."""
    if retention.is_bulk(args) or not args.run:
        return retention.delete_runs(args)
    with open_client(args) as client:
        client.runs.delete(args.run)
    print(f"deleted run {args.run}")
    return EXIT_OK
