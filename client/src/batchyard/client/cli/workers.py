"""`batchyard workers list|get`: the workers serving your workspace (any role).

The SDK, gRPC and protobuf are imported inside the handlers (the command line starts
fast when it does not run these).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from batchyard.client.cli.failures import EXIT_OK
from batchyard.client.cli.options import (
    add_amount_options,
    add_connection_options,
    add_output_option,
    command_group,
    open_client,
)

DEFAULT_LIMIT = 50

EPILOG = """\
A worker is listed while it is alive: the server saw it (a lease call, a heartbeat, an
open long-poll) within the lease TTL. A worker whose lease the server had to expire is
"fenced": it gets no work until it calls again. `get` also shows a worker that went away.

examples:
  batchyard workers list
  batchyard workers get host-1234 -o json
"""


def register(subparsers: Any) -> None:
    """Add `workers` to the `batchyard` parser."""
    workers = command_group(
        subparsers,
        "workers",
        help_text="list the workers serving your workspace",
        description="The worker processes serving your workspace.",
        epilog=EPILOG,
    )
    listed = workers("list", "list the live workers", EPILOG)
    add_amount_options(listed, "workers", DEFAULT_LIMIT)
    _common(listed)
    listed.set_defaults(handler=list_workers)
    got = workers("get", "show one worker", EPILOG)
    got.add_argument("worker_id", metavar="WORKER", help="the worker's id (its --worker-id)")
    _common(got)
    got.set_defaults(handler=get_worker)


def _common(parser: argparse.ArgumentParser, output: str = "table") -> None:
    add_connection_options(parser)
    add_output_option(parser, default=output)


def _state(worker: Any) -> str:
    if not worker.alive:
        return "gone"
    return "fenced" if worker.fenced else "alive"


def list_workers(args: argparse.Namespace) -> int:
    """`workers list`."""
    from datetime import UTC, datetime

    from batchyard.client.cli.render import as_datetime, data_text, message_dict, relative_time
    from batchyard.client.cli.render import table as render_table

    limit = None if args.all else args.limit
    with open_client(args) as client:
        found = list(client.workers.list(limit=limit, page_size=args.page_size))
    now = datetime.now(UTC)
    if args.output != "table":
        print(data_text([message_dict(w) for w in found], args.output))
        return EXIT_OK
    rows = [
        [
            w.worker_id,
            w.host or "-",
            ",".join(w.queues) or "-",
            f"{len(w.running_attempts)}/{w.slots}" if w.slots else str(len(w.running_attempts)),
            relative_time(as_datetime(w.last_heartbeat_time), now),
            relative_time(as_datetime(w.start_time), now) if w.HasField("start_time") else "-",
            w.version or "-",
            _state(w),
        ]
        for w in found
    ]
    headers = ["WORKER", "HOST", "QUEUES", "RUNNING", "SEEN", "STARTED", "VERSION", "STATE"]
    if rows:
        print(render_table(headers, rows))
    else:
        print("no live workers", file=sys.stderr)
    return EXIT_OK


def get_worker(args: argparse.Namespace) -> int:
    """`workers get WORKER`."""
    from batchyard.client.cli.render import data_text, message_dict

    with open_client(args) as client:
        worker = client.workers.get(args.worker_id)
    if args.output == "table":
        running = ", ".join(f"{a.run} #{a.attempt}" for a in worker.running_attempts) or "-"
        for label, value in (
            ("worker", worker.worker_id),
            ("host", worker.host or "-"),
            ("version", worker.version or "-"),
            ("queues", ",".join(worker.queues) or "-"),
            ("slots", f"{worker.slots_busy}/{worker.slots} busy"),
            ("running", running),
            ("state", _state(worker)),
        ):
            print(f"{label:8} {value}")
    else:
        print(data_text(message_dict(worker), args.output))
    return EXIT_OK
