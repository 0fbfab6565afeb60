"""`batchyard queues create|get|list|update|pause|resume|delete`.

The SDK, grpc and protobuf are imported inside the handlers, so building the parser
(every start of the command line) does not pay for them.
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
)

DEFAULT_LIMIT = 100

EPILOG = """\
Runs name their queue (a definition's `queue`, or `runs submit --queue`; `default` when
none). A worker serving several queues (`batchyard worker --queues a,b`) leases from the
one with the higher priority first. A paused queue accepts submissions and holds them;
running attempts go on, and resuming releases the held runs at once. A concurrency
limit caps how many of the queue's runs are RUNNING at once, across all workers.

examples:
  batchyard queues create gpu --priority 10 --limit 4 --description "the big boxes"
  batchyard queues list
  batchyard queues pause gpu
  batchyard queues resume gpu
  batchyard queues update gpu --no-limit
  batchyard queues get gpu -o json
  batchyard queues delete gpu
"""


def register(subparsers: Any) -> None:
    """Add `queues` to the `batchyard` parser."""
    queues = command_group(
        subparsers,
        "queues",
        help_text="create, list, pause, resume and limit queues",
        description="Manage the queues of your workspace.",
        epilog=EPILOG,
    )
    create = queues("create", "create a queue", EPILOG)
    create.add_argument("name", metavar="NAME", help="letters, digits, '.', '_', '-'")
    _settings(create)
    create.add_argument("--paused", action="store_true", help="create it paused")
    _common(create)
    create.set_defaults(handler=create_queue)
    get = queues("get", "show a queue and its numbers", EPILOG)
    get.add_argument("name", metavar="NAME")
    _common(get)
    get.set_defaults(handler=get_queue)
    listed = queues("list", "list queues with their numbers", EPILOG)
    add_amount_options(listed, "queues", DEFAULT_LIMIT)
    _common(listed)
    listed.set_defaults(handler=list_queues)
    update = queues("update", "change a queue's description, priority or limit", EPILOG)
    update.add_argument("name", metavar="NAME")
    _settings(update)
    update.add_argument("--no-limit", action="store_true", help="remove the concurrency limit")
    _common(update)
    update.set_defaults(handler=update_queue)
    for verb, text in (
        ("pause", "hold a queue's pending runs"),
        ("resume", "release a paused queue's held runs"),
    ):
        command = queues(verb, text, EPILOG)
        command.add_argument("name", metavar="NAME")
        _common(command)
        command.set_defaults(handler=pause_queue if verb == "pause" else resume_queue)
    delete = queues("delete", "delete a queue (it must hold no unfinished runs)", EPILOG)
    delete.add_argument("name", metavar="NAME")
    add_connection_options(delete)
    delete.set_defaults(handler=delete_queue)


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--description", help="free text")
    parser.add_argument("--priority", type=int, help="-1000 to 1000 (default 0)")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N runs running at once")


def _common(parser: argparse.ArgumentParser) -> None:
    add_connection_options(parser)
    add_output_option(parser)


def create_queue(args: argparse.Namespace) -> int:
    """`queues create NAME [--priority P] [--limit N] [--paused] [--description D]`."""
    from batchyard.client.cli.options import open_client

    with open_client(args) as client:
        queue = client.queues.create(
            args.name,
            description=args.description or "",
            priority=args.priority or 0,
            paused=args.paused,
            concurrency_limit=args.limit,
        )
    return _show([queue], args.output)


def get_queue(args: argparse.Namespace) -> int:
    """`queues get NAME`."""
    from batchyard.client.cli.options import open_client

    with open_client(args) as client:
        queue = client.queues.get(args.name)
    return _show([queue], args.output, details=True)


def list_queues(args: argparse.Namespace) -> int:
    """`queues list`."""
    from batchyard.client.cli.options import open_client

    limit = None if args.all else args.limit
    with open_client(args) as client:
        found = list(client.queues.list(limit=limit, page_size=args.page_size))
    return _show(found, args.output, many=True)


def update_queue(args: argparse.Namespace) -> int:
    """`queues update NAME [--description D] [--priority P] [--limit N | --no-limit]`."""
    from batchyard.client.cli.failures import UsageError
    from batchyard.client.cli.options import open_client

    changes: dict[str, Any] = {}
    if args.description is not None:
        changes["description"] = args.description
    if args.priority is not None:
        changes["priority"] = args.priority
    if args.limit is not None and args.no_limit:
        raise UsageError("--limit and --no-limit: give one")
    if args.limit is not None or args.no_limit:
        changes["concurrency_limit"] = None if args.no_limit else args.limit
    if not changes:
        raise UsageError("name something to change: --description, --priority, --limit")
    with open_client(args) as client:
        queue = client.queues.update(args.name, **changes)
    return _show([queue], args.output)


def pause_queue(args: argparse.Namespace) -> int:
    """`queues pause NAME`."""
    from batchyard.client.cli.options import open_client

    with open_client(args) as client:
        queue = client.queues.pause(args.name)
    return _show([queue], args.output)


def resume_queue(args: argparse.Namespace) -> int:
    """`queues resume NAME`."""
    from batchyard.client.cli.options import open_client

    with open_client(args) as client:
        queue = client.queues.resume(args.name)
    return _show([queue], args.output)


def delete_queue(args: argparse.Namespace) -> int:
    """`queues delete NAME`."""
    from batchyard.client.cli.options import open_client

    with open_client(args) as client:
        client.queues.delete(args.name)
    print(f"deleted queue {args.name}", file=sys.stderr)
    return EXIT_OK


def _show(queues: list[Any], output: str, *, details: bool = False, many: bool = False) -> int:
    from batchyard.client.cli.render import data_text, message_dict, table

    if output != "table":
        docs = [message_dict(q) for q in queues]
        print(data_text(docs if many else docs[0], output))
        return EXIT_OK
    if details and queues:
        print(_details(queues[0]))
        return EXIT_OK
    headers = ["NAME", "STATE", "PRIORITY", "LIMIT", "PENDING", "RUNNING", "OLDEST PENDING"]
    rows = [_row(q) for q in queues]
    print(table(headers, rows) if rows else "no queues", file=sys.stdout if rows else sys.stderr)
    return EXIT_OK


def _row(queue: Any) -> list[str]:
    from batchyard.client.describe import duration

    stats = queue.stats
    oldest = stats.oldest_pending_age.ToTimedelta().total_seconds()
    return [
        queue.name,
        "paused" if stats.paused else "enabled",
        str(queue.priority),
        str(queue.concurrency_limit) if queue.concurrency_limit else "-",
        str(stats.pending),
        str(stats.running),
        duration(round(oldest)) if stats.HasField("oldest_pending_age") else "-",
    ]


def _details(queue: Any) -> str:
    from batchyard.client.cli.render import key_values

    cells = _row(queue)
    pairs = [
        ("Name", cells[0]),
        ("Description", queue.description or "-"),
        ("State", cells[1]),
        ("Priority", cells[2]),
        ("Concurrency limit", cells[3] if queue.concurrency_limit else "none"),
        ("Pending", cells[4]),
        ("Running", cells[5]),
        ("Oldest pending", cells[6]),
    ]
    return key_values(pairs)
