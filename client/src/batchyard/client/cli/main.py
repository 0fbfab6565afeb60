"""`batchyard`: one command for people and for deployment.

The client's own commands (definitions, runs, ...) live here; `server`, `worker` and `dev`
come from the installed server and worker packages through the entry-point group
`batchyard.commands`, so a client-only install has no database driver.

Every command is built only when chosen (`lazy.py`), so a command imports only what it
uses: `--help` lists names and one-line helps without importing any command module, and
`runs list` never loads the server's or worker's modules. A plugin's entry point names a
`(help, "module:register")` pair in a cheap module (e.g. `batchyard.server.commands`);
an entry point that names a `register(subparsers)` function is registered at once.
New client commands: add a line at the END of `COMMANDS` (and import grpc, protobuf and
the SDK inside the handlers, or at the top of the command module: it is loaded only when
its command runs).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from batchyard.client.cli.failures import EXIT_USAGE, run
from batchyard.client.cli.lazy import LazySubcommands

PLUGIN_GROUP = "batchyard.commands"

# (name, one-line help, "module:register"): the module registers the command when chosen.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "definitions",
        "create, get, list, update and delete job definitions",
        "batchyard.client.cli.definitions:register",
    ),
    (
        "runs",
        "submit, get, list, watch, cancel and delete runs",
        "batchyard.client.cli.runs:register",
    ),
    ("logs", "print or follow a run's log", "batchyard.client.cli.logs:register"),
    ("results", "list and download a run's result files", "batchyard.client.cli.results:register"),
    ("sql", "run an ad-hoc SQL query on a target database", "batchyard.client.cli.sql:register"),
    (
        "tokens",
        "create, list and revoke API tokens (admin)",
        "batchyard.client.cli.access:register",
    ),
    ("workspaces", "create and list workspaces (admin)", "batchyard.client.cli.access:register"),
    ("audit", "read your workspace's audit trail (admin)", "batchyard.client.cli.access:register"),
    (
        "completion",
        "print a shell completion script (bash, zsh or fish)",
        "batchyard.client.cli.completion:register",
    ),
    (
        "queues",
        "create, list, pause, resume and limit queues",
        "batchyard.client.cli.queues:register",
    ),
    (
        "schedules",
        "run definitions on a timetable (cron or interval)",
        "batchyard.client.cli.schedules:register",
    ),
    (
        "ingest",
        "load files from S3 into a table, each file exactly once",
        "batchyard.client.cli.ingest:register",
    ),
    ("workers", "list the workers serving your workspace", "batchyard.client.cli.workers:register"),
)

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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `batchyard` parser: the whole tree, or (`command` given, as `main` does) one
    whose commands are built only when chosen, with the plugins looked up only when
    `command` is not one of the client's own."""
    parser = argparse.ArgumentParser(
        prog="batchyard",
        description="Batchyard: define batch jobs, run them, follow their logs, collect results.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action=VersionAction, nargs=0, help="print the versions and exit"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", action=LazySubcommands)
    assert isinstance(subparsers, LazySubcommands)
    for name, help_text, target in COMMANDS:
        subparsers.add_lazy(name, help_text, target)
    if command is None or command not in {name for name, _, _ in COMMANDS}:
        add_plugins(subparsers)
    if command is None:
        subparsers.load_all()
    return parser


def add_plugins(subparsers: LazySubcommands) -> None:
    """The installed packages' commands (`server`, `dev`, `worker`), sorted by name."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        declared = entry.load()
        if isinstance(declared, tuple):
            help_text, target = declared
            subparsers.add_lazy(entry.name, help_text, target)
        else:
            declared(subparsers)


class VersionAction(argparse.Action):
    """`--version`: the installed parts' versions, looked up only when asked."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit()


def version_text() -> str:
    """'batchyard 0.1.0 (client 0.1.0, server 0.1.0, worker 0.1.0)': the installed parts."""
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for part in ("client", "server", "worker"):
        try:
            parts.append(f"{part} {version(f'batchyard-{part}')}")
        except PackageNotFoundError:
            continue
    head = parts[0].split()[1] if parts else "0+unknown"
    return f"batchyard {head} ({', '.join(parts)})"


NEGATIVE_VALUE = re.compile(r"^-\d")
"""A word that is a negative value (`-5s`, `-1`), not a flag."""
TAKES_NEGATIVE = re.compile(r"^--([a-z-]*timeout|priority|after-revision)$")
"""Options whose value may be written negative: `--timeout -5s` is the value -5s (refused
with a clear message when it must be positive), not a missing value and a flag -5s."""


def attach_negative_values(words: list[str]) -> list[str]:
    """`--timeout -5s` -> `--timeout=-5s`, which argparse reads as a value."""
    out: list[str] = []
    skip = False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word == "--":
            out += words[i:]
            break
        following = words[i + 1] if i + 1 < len(words) else ""
        if TAKES_NEGATIVE.match(word) and NEGATIVE_VALUE.match(following):
            out.append(f"{word}={following}")
            skip = True
        else:
            out.append(word)
    return out


def main(argv: list[str] | None = None) -> int:
    words = attach_negative_values(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command=words[0] if words else "")
    args = parser.parse_args(words)
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
