"""Options every client command shares: where the server is, the deadline, the output."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from batchyard.client import connection
from batchyard.client.cli.render import OUTPUT_FORMATS
from batchyard.client.definitions import DefinitionsClient


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """--server and --timeout."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--server",
        metavar="HOST:PORT",
        help=(
            f"the Batchyard server (default: ${connection.SERVER_ENV}, "
            f"else {connection.DEFAULT_TARGET})"
        ),
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        default=connection.DEFAULT_TIMEOUT,
        help="deadline of each call to the server (default: %(default)g)",
    )


def add_output_option(parser: argparse.ArgumentParser, default: str | None = "table") -> None:
    """-o/--output table|json|yaml."""
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=default,
        help=f"output format (default: {default or 'a one-line summary'})",
    )


@contextmanager
def definitions_client(args: argparse.Namespace) -> Iterator[DefinitionsClient]:
    """A DefinitionsClient on a channel to `args.server`, closed afterwards."""
    with connection.channel(args.server, timeout=args.timeout) as ch:
        yield DefinitionsClient(ch, timeout=args.timeout)
