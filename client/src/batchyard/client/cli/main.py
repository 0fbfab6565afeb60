"""`batchyard`: one command for people and for deployment.

The client's own commands (definitions, runs, ...) live here; `server`, `worker` and `dev`
come from the installed server and worker packages through the entry-point group
`batchyard.commands`, so a client-only install has no database driver.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

from batchyard.client.cli import access, completion, definitions, logs, results, runs, sql, workers
from batchyard.client.cli.failures import EXIT_USAGE, run

PLUGIN_GROUP = "batchyard.commands"

EPILOG = """\
Every command has --help with examples. Client commands find the server in --server or
$BATCHYARD_SERVER (default localhost:50051) and the token in --token, $BATCHYARD_TOKEN or
~/.config/batchyard/token (on this machine, the one `batchyard dev` wrote). Reading
commands take -o table|json|yaml. Exit codes: 0 done, 1 refused by the server (or the
run failed), 2 wrong command line, 3 server unreachable, 4 run cancelled, 5 wait timed out.

examples:
  batchyard dev                                      # everything on this machine
  batchyard definitions create -f greet.yaml
  batchyard runs submit greet --arg world --wait --follow
  batchyard runs list --status failed
  batchyard logs RUN_ID --follow
  batchyard results download RUN_ID -o out/
  source <(batchyard completion bash)                # Tab completion
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchyard",
        description="Batchyard: define batch jobs, run them, follow their logs, collect results.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=version_text(), help="print the versions and exit"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    definitions.register(subparsers)
    runs.register(subparsers)
    logs.register(subparsers)
    results.register(subparsers)
    sql.register(subparsers)
    access.register(subparsers)
    completion.register(subparsers)
    workers.register(subparsers)
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        entry.load()(subparsers)
    return parser


def version_text() -> str:
    """'batchyard 0.1.0 (client 0.1.0, server 0.1.0, worker 0.1.0)': the installed parts."""
    parts = []
    for part in ("client", "server", "worker"):
        try:
            parts.append(f"{part} {version(f'batchyard-{part}')}")
        except PackageNotFoundError:
            continue
    head = parts[0].split()[1] if parts else "0+unknown"
    return f"batchyard {head} ({', '.join(parts)})"


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
