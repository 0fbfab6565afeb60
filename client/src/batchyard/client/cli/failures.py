"""Exit codes, and how a failed command tells the user what went wrong (never a traceback).

0: done. 1: the server said no (not found, invalid, conflict, ...). 2: the command line or
an input file is wrong. 3: the server could not be reached or did not answer in time.
Commands that wait for a run (`runs submit --wait`, `runs watch`) also end with the run's
outcome: 0 succeeded, 1 failed, 4 cancelled, 5 the wait timed out (the run goes on).
130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # imported when an error is reported: `--help` does not load grpc
    from batchyard.client.errors import BatchyardError

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_RUN_FAILED = 1
EXIT_CANCELLED = 4
EXIT_WAIT_TIMEOUT = 5
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]
_TLS_SIGNS = ("Socket closed", "handshake", "SSL", "certificate")
"""In gRPC's message when a connection failed for TLS: a plaintext client at a TLS server,
an unknown CA, a missing or refused client certificate."""


class UsageError(Exception):
    """The command line or an input file is wrong (exit code 2)."""


def run(handler: Handler, args: argparse.Namespace) -> int:
    """Run a command's handler, turning the errors it may raise into a message and code."""
    try:
        return int(handler(args))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        errors = sys.modules.get("batchyard.client.errors")  # loaded if one was raised
        if errors is None or not isinstance(exc, errors.BatchyardError):
            raise
        from batchyard.client.connection import resolve_target

        target = resolve_target(getattr(args, "server", None))
        return report(exc, target, sys.stderr, getattr(args, "deadline_flag", "--timeout"))


def report(
    error: BatchyardError, target: str, out: TextIO, deadline_flag: str = "--timeout"
) -> int:
    """Print `error` for people (message, field violations, hint) and return the exit code.

    `deadline_flag` is the option that sets the call deadline, named in the hint.
    """
    from batchyard.client.errors import DeadlineExceededError, UnavailableError

    if isinstance(error, DeadlineExceededError):
        print(f"error: the server at {target} did not answer in time", file=out)
        print(
            f"hint: is it overloaded or unreachable? Raise the deadline with {deadline_flag}.",
            file=out,
        )
        return EXIT_UNREACHABLE
    if isinstance(error, UnavailableError):
        if error.reason:  # the server answered: it cannot serve right now
            print(f"error: {error.message}", file=out)
            print(f"hint: the server at {target} is unavailable right now; retry.", file=out)
        else:
            print(f"error: cannot reach the Batchyard server at {target}", file=out)
            print(f"  ({error.message})", file=out)
            print(
                "hint: is the server running there? Choose another one with --server "
                "HOST:PORT or the BATCHYARD_SERVER environment variable.",
                file=out,
            )
            if any(sign in error.message for sign in _TLS_SIGNS):
                print(
                    "hint: a TLS server needs --tls (--tls-ca FILE for a private CA), and "
                    "one that requires client certificates also --tls-cert and --tls-key.",
                    file=out,
                )
        return EXIT_UNREACHABLE
    print(f"error: {headline(error)}", file=out)
    for field, description in error.field_violations:
        print(f"  {field}: {description}", file=out)
    return EXIT_REFUSED


def headline(error: BatchyardError) -> str:
    """The error's message, without the summary of violations listed on their own lines."""
    if error.field_violations:
        field, description = error.field_violations[0]
        at = error.message.find(f"{field}: {description}")
        if at > 0:
            return error.message[:at].rstrip(" :;")
    return error.message
