"""`batchyard runs submit`: submit a run, and with --wait follow it to its end."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchyard.client.cli.failures import EXIT_OK, UsageError
from batchyard.client.cli.options import (
    add_reconnect_option,
    add_request_id_option,
    add_wait_timeout_option,
    duration_seconds,
    env_pair,
    non_negative_int,
    open_client,
)
from batchyard.client.cli.run_views import run_output
from batchyard.client.cli.run_wait import wait_for_run
from batchyard.client.core.requests import MAX_PAYLOAD_BYTES

EPILOG = """\
REF is the definition's name or uuid; the run pins its current version. Every option
changes this run only: --arg (repeated) replaces the definition's args, --env and
--secret-env are merged over its own, --timeout, --queue and --priority replace its
own, and --retries replaces its whole retry strategy (N retries, 1 min apart).
An --arg that starts with "-" is written --arg=-x. --env KEY (without a value) passes
on your own $KEY; prefer that for --secret-env, so the value stays off the command line.

Prints `submitted run <uuid> (<definition> v<version>)`. With --wait it then follows
the run until it ends, and prints how it ended. Its state (status, attempt, progress)
is shown on stderr: on a terminal as one live line with a progress bar, e.g.
  0:00:36 Run <uuid>: running (attempt 1, 40%) [########------------]
otherwise as one line per change. --follow (implies --wait) also prints the run's log
as it comes, one line per entry (`HH:MM:SS.mmm [attempt] stream LEVEL message`, times
in UTC) on stdout, or on stderr with -o json|yaml. If the server restarts meanwhile,
watching and following resume where they were (see --reconnect-timeout).

exit codes:
  0  submitted (with --wait: the run succeeded)
  1  the server refused the run, e.g. unknown definition or a bad option (the field is
     named, e.g. overrides.timeout); with --wait: the run failed
  2  wrong command line, or the payload file cannot be read
  3  the server cannot be reached or did not answer in time (with --wait: for
     longer than --reconnect-timeout)
  4  with --wait: the run was cancelled
  5  with --wait: --wait-timeout passed before the run ended (the run goes on)
  130  interrupted (Ctrl-C; a submitted run goes on)

examples:
  batchyard runs submit hello
  batchyard runs submit hello --arg=--day --arg 2024-05-01 --env MODE=full --wait
  batchyard runs submit hello --follow
  batchyard runs submit etl --secret-env DB_PASSWORD --timeout 2h --retries 3
  batchyard runs submit etl --payload-file input.json --request-id etl-2024-05-01
  batchyard runs submit hello --wait --wait-timeout 10m -o json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `runs submit` (connection and output options apart)."""
    parser.add_argument("ref", metavar="REF", help="definition name or uuid")
    parser.add_argument(
        "--arg",
        dest="args",
        metavar="ARG",
        action="append",
        default=[],
        help="an argument for the program (repeat for more; replaces the definition's)",
    )
    for flag, what in (("--env", "environment variable"), ("--secret-env", "secret variable")):
        parser.add_argument(
            flag,
            metavar="KEY[=VALUE]",
            type=env_pair,
            action="append",
            default=[],
            help=f"an extra {what} (repeatable); KEY alone passes on your $KEY",
        )
    parser.add_argument(
        "--timeout",
        dest="run_timeout",
        metavar="SECONDS",
        type=duration_seconds,
        help="time limit per attempt, e.g. 90, 90s, 15m, 2h (the call deadline is "
        "--request-timeout)",
    )
    parser.add_argument(
        "--retries", metavar="N", type=non_negative_int, help="retry a failed run N times"
    )
    parser.add_argument("--queue", metavar="Q", help="the queue to run in")
    parser.add_argument("--priority", metavar="P", type=int, help="-1000 to 1000; higher first")
    payload = parser.add_mutually_exclusive_group()
    payload.add_argument(
        "--payload-file",
        metavar="FILE",
        help="a file (- for stdin) given to the job at $BATCHYARD_PAYLOAD_PATH (≤ 1 MiB)",
    )
    payload.add_argument("--payload", metavar="TEXT", help="the payload as text")
    add_request_id_option(parser)
    add_pipeline_options(parser)
    parser.add_argument(
        "--wait", action="store_true", help="follow the run until it ends (see exit codes)"
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="with --wait: also print the run's log as it comes (implies --wait)",
    )
    add_wait_timeout_option(parser)
    add_reconnect_option(parser)


def submit_run(args: argparse.Namespace) -> int:
    """`runs submit REF [...] [--wait [--follow] [--wait-timeout S]]`."""
    wait = args.wait or args.follow
    if args.wait_timeout is not None and not wait:
        raise UsageError("--wait-timeout needs --wait")
    payload = _read_payload(args)
    array_size, payloads = array_of(args)
    env = _environment(args.env, "--env")
    secret_env = _environment(args.secret_env, "--secret-env")
    with open_client(args) as client:
        handle = client.runs.submit(
            args.ref,
            args=args.args,
            env=env,
            secret_env=secret_env,
            timeout=args.run_timeout,
            retries=args.retries,
            queue=args.queue,
            priority=args.priority,
            payload=payload,
            request_id=args.request_id,
            array_size=array_size,
            payloads=payloads,
            depends_on=[after_dependency(text) for text in args.after],
        )
        run = handle.state
        if handle.deduplicated:
            print(
                f"note: request id {args.request_id!r} was used before: this is its run, "
                "nothing new was submitted",
                file=sys.stderr,
            )
        if args.output is None:
            array = f", an array of {run.array_size}" if run.array_size else ""
            print(
                f"submitted run {run.uuid} ({run.definition_name} v{run.definition_version}"
                f"{array})",
                flush=True,
            )
        if not wait:
            if args.output is not None:
                print(run_output(run, args.output, datetime.now(UTC)))
            return EXIT_OK
        return wait_for_run(
            handle,
            timeout=args.wait_timeout,
            output=args.output,
            follow=args.follow,
            reconnect_timeout=args.reconnect_timeout,
        )


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--array",
        metavar="N",
        type=int,
        default=0,
        help="an array run of N children (2 to 10,000), each with $BATCHYARD_ARRAY_INDEX",
    )
    parser.add_argument(
        "--payloads-dir",
        metavar="DIR",
        help="one payload per child: the files of DIR in name order (sets --array)",
    )
    parser.add_argument(
        "--after",
        metavar="RUN[:any]",
        action="append",
        default=[],
        help="wait for RUN to succeed (:any: to end at all; arrays also :n_to_n, or "
        "'sequential' alone); repeatable",
    )


def array_of(args: argparse.Namespace) -> tuple[int, list[bytes] | None]:
    """--array and --payloads-dir: the array size and the per-child payloads."""
    if args.payloads_dir is None:
        return args.array, None
    folder = Path(args.payloads_dir)
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        payloads = [p.read_bytes() for p in files]
    except OSError as exc:
        raise UsageError(f"cannot read {folder}: {exc.strerror or exc}") from None
    if args.array and args.array != len(payloads):
        raise UsageError(f"--array {args.array} but {len(payloads)} files in {folder}")
    for path, data in zip(files, payloads, strict=True):
        if len(data) > MAX_PAYLOAD_BYTES:
            raise UsageError(f"{path} is {len(data)} bytes; at most 1 MiB per payload")
    return len(payloads), payloads


def after_dependency(text: str) -> Any:
    """`--after RUN[:any][:n_to_n]` or `--after sequential` as a `depends_on` entry."""
    if text == "sequential":
        return "sequential"
    run, *words = text.split(":")
    known = {"any", "success", "n_to_n"}
    if not run or any(w not in known for w in words):
        raise UsageError(f"--after {text}: write RUN, RUN:any, RUN:n_to_n or sequential")
    return (run, *words)


def _read_payload(args: argparse.Namespace) -> bytes:
    if args.payload is not None:
        data: bytes = args.payload.encode()
    elif args.payload_file is None:
        return b""
    elif args.payload_file == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        data = stdin.read() if stdin is not None else sys.stdin.read().encode()
    else:
        try:
            data = Path(args.payload_file).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.payload_file}: {exc.strerror or exc}") from None
    if len(data) > MAX_PAYLOAD_BYTES:
        raise UsageError(f"the payload is {len(data)} bytes; at most 1 MiB (1048576 bytes)")
    return data


def _environment(pairs: list[tuple[str, str | None]], flag: str) -> dict[str, str]:
    """KEY=VALUE pairs as a dict; a bare KEY takes the value of the caller's $KEY."""
    env = {}
    for key, value in pairs:
        if value is None:
            value = os.environ.get(key)
            if value is None:
                raise UsageError(f"{flag} {key}: ${key} is not set here (write {key}=VALUE)")
        env[key] = value
    return env
