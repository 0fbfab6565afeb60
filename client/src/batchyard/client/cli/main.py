"""`batchyard`: one command for people and for deployment.

The client's own commands (definitions, runs, ...) live here; `server`, `worker` and `dev`
come from the installed server and worker packages through the entry-point group
`batchyard.commands`, so a client-only install has no database driver.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points

from batchyard.client.cli import definitions, logs, runs
from batchyard.client.cli.failures import EXIT_USAGE, run

PLUGIN_GROUP = "batchyard.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchyard",
        description="Batchyard: define batch jobs, run them, follow their logs, collect results.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    definitions.register(subparsers)
    runs.register(subparsers)
    logs.register(subparsers)
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        entry.load()(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return run(handler, args)
    except BrokenPipeError:
        # The reader went away (`batchyard ... | head`): stop quietly, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
