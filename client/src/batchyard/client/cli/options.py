"""Options every client command shares: where the server is, the deadline, the output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from batchyard.client import connection
from batchyard.client.cli.failures import EXIT_USAGE, UsageError
from batchyard.client.cli.render import OUTPUT_FORMATS
from batchyard.client.core.retry import RetryPolicy
from batchyard.client.core.streams import RECONNECT_TIMEOUT
from batchyard.client.sync import Client
from batchyard.config import parse_duration


def _number(text: str, kind: type[float] | type[int], least: float, strict: bool) -> float:
    """`text` as an int or a float of at least `least` (more than it, `strict`), or an
    argparse error saying what is wrong."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not {'an integer' if kind is int else 'a number'}: {text!r}"
        ) from None
    if not (value > least if strict else value >= least):  # NaN too
        rule = "positive" if strict else f"at least {least}" if least else "0 or more"
        raise argparse.ArgumentTypeError(f"must be {rule}: {text}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return int(_number(text, int, 1, strict=False))


def positive_float(text: str) -> float:
    """An argparse type: a number greater than 0."""
    return _number(text, float, 0, strict=True)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return int(_number(text, int, 0, strict=False))


def duration_seconds(text: str) -> float:
    """An argparse type: a positive duration in the shared grammar (batchyard.config):
    '90', '90s', '1.5m', '1h30m', '2d'."""
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def env_pair(text: str) -> tuple[str, str | None]:
    """An argparse type: 'KEY=VALUE' → (KEY, VALUE); a bare 'KEY' → (KEY, None), for the
    caller's own $KEY."""
    key, sep, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE or KEY: {text!r}")
    return key, value if sep else None


CommandFactory = Callable[[str, str, str], argparse.ArgumentParser]


def command_group(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    *,
    help_text: str,
    description: str,
    epilog: str,
) -> CommandFactory:
    """Add `batchyard NAME` (which prints its usage alone); returns a factory for its
    commands: `command(name, help_text, epilog)` -> the command's parser."""
    group = subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group.set_defaults(handler=lambda _args: _print_usage(group))
    commands = group.add_subparsers(dest=f"{name}_command", metavar="COMMAND")

    def command(
        command_name: str, command_help: str, command_epilog: str
    ) -> argparse.ArgumentParser:
        return add_command(commands, command_name, help_text=command_help, epilog=command_epilog)

    return command


def add_command(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    *,
    help_text: str,
    epilog: str,
) -> argparse.ArgumentParser:
    """Add `batchyard NAME`, a command of its own (not a group): its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _print_usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def add_amount_options(parser: argparse.ArgumentParser, noun: str, default_limit: int) -> None:
    """`--limit N | --all` and `--page-size N` for a list command of `noun` (plural)."""
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "--limit",
        metavar="N",
        type=positive_int,
        default=default_limit,
        help=f"show at most N {noun} (default: %(default)s)",
    )
    amount.add_argument("--all", action="store_true", help=f"show every one of the {noun}")
    parser.add_argument(
        "--page-size",
        metavar="N",
        type=positive_int,
        default=0,
        help=f"{noun} per call to the server (default: as many as needed, up to 1000)",
    )


def add_connection_options(parser: argparse.ArgumentParser, *, short_timeout: bool = True) -> None:
    """--server and --timeout (also spelled --request-timeout).

    `short_timeout=False` leaves out the `--timeout` spelling, for a command whose
    `--timeout` means something else (`runs submit`: the run's timeout).
    """
    flags = ["--timeout", "--request-timeout"] if short_timeout else ["--request-timeout"]
    parser.set_defaults(deadline_flag=flags[0])
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
        "--token",
        metavar="TOKEN",
        help=(
            f"API token (default: ${connection.TOKEN_ENV}, else the file "
            "~/.config/batchyard/token; on this machine, the one `batchyard dev` wrote). "
            "Prefer the variable or the file: a flag shows in the process list"
        ),
    )
    group.add_argument(
        *flags,
        dest="timeout",
        metavar="SECONDS",
        type=duration_seconds,
        default=connection.DEFAULT_TIMEOUT,
        help="deadline of each call to the server (default: %(default)g)",
    )
    _add_tls_options(group)


def _add_tls_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--tls",
        action="store_true",
        default=None,
        help=f"connect with TLS (also: a grpcs:// or https:// --server, ${connection.TLS_ENV}=1, "
        "or any of the TLS files below)",
    )
    for flag, env, text in (
        (
            "--tls-ca",
            connection.TLS_CA_ENV,
            "PEM CA that signed the server's certificate (default: the system's trusted roots)",
        ),
        (
            "--tls-cert",
            connection.TLS_CERT_ENV,
            "PEM client certificate, for a server that requires one (mutual TLS)",
        ),
        ("--tls-key", connection.TLS_KEY_ENV, "PEM key of the client certificate"),
    ):
        group.add_argument(flag, metavar="FILE", type=Path, help=f"{text} (${env})")


def add_reconnect_option(parser: argparse.ArgumentParser) -> None:
    """--reconnect-timeout: how long a followed stream may keep failing to reconnect."""
    parser.add_argument(
        "--reconnect-timeout",
        metavar="SECONDS",
        type=duration_seconds,
        default=RECONNECT_TIMEOUT,
        help="while following, give up (exit code 3) when the server cannot be reached "
        "for this long, e.g. 30s, 10m (default: 5m)",
    )


def add_request_id_option(parser: argparse.ArgumentParser) -> None:
    """--request-id: the idempotency key of a submit."""
    parser.add_argument(
        "--request-id",
        metavar="ID",
        default="",
        help="idempotency key: submitting again with it returns the same run",
    )


def add_wait_timeout_option(
    parser: argparse.ArgumentParser, what: str = "with --wait: stop waiting"
) -> None:
    """--wait-timeout: how long to wait for a run's end."""
    parser.add_argument(
        "--wait-timeout",
        metavar="SECONDS",
        type=duration_seconds,
        help=f"{what} after this long, e.g. 30s, 10m (default: no limit)",
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


def client_tls(args: argparse.Namespace) -> bool | connection.ClientTls | None:
    """The TLS the connection flags ask for: a ClientTls when a TLS file is given (the
    others from the environment), True for a bare --tls, None to let the target and the
    environment decide (:func:`batchyard.client.connection.resolve_tls`)."""
    ca, cert, key = (getattr(args, name, None) for name in ("tls_ca", "tls_cert", "tls_key"))
    if ca is None and cert is None and key is None:
        return True if getattr(args, "tls", None) else None
    _, env = connection.resolve_tls(args.server, True)
    assert env is not None  # TLS was asked for
    return connection.ClientTls(ca=ca or env.ca, cert=cert or env.cert, key=key or env.key)


# Reads (and submits with a request id) are retried a few times within about 2 s when
# the server cannot be reached: a restarting server is waited for, a missing one reported
# soon.
CLI_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.25, max_backoff=1.0)


@contextmanager
def open_client(args: argparse.Namespace) -> Iterator[Client]:
    """A `Client` of `args.server` with `args.token`, the `args.timeout` deadline and the
    TLS the flags ask for, retrying calls safe to repeat (`CLI_RETRY`), closed
    afterwards; a TLS file that cannot be used is a usage error."""
    try:
        client = Client(
            args.server,
            token=getattr(args, "token", None),
            tls=client_tls(args),
            timeout=args.timeout,
            retry=CLI_RETRY,
        )
    except connection.TlsConfigError as exc:
        raise UsageError(str(exc)) from None
    with client:
        yield client
