"""The server's limits: message and metadata sizes, concurrency budgets, keepalive and
connection lifetimes — their flags, and the grpc server options they become."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields

from batchyard.server.api.budgets import Kind

MIB = 1024 * 1024
GRPC_SLACK = 16
"""grpc's own concurrency limit sits this far above the sum of the budgets (calls to
unknown methods, which no budget counts)."""
_SIZE = re.compile(r"\s*(\d+)\s*([KkMm]i?[Bb]?|[Bb]?)\s*")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2}
_UNITS["mib"] = MIB


@dataclass(frozen=True)
class ServerLimits:
    max_receive_message_bytes: int = 8 * MIB
    max_send_message_bytes: int = 8 * MIB
    max_metadata_bytes: int = 16 * 1024
    max_concurrent_calls: int = 256
    max_concurrent_streams: int = 2000
    max_concurrent_lease_polls: int = 1000
    max_concurrent_probes: int = 64
    keepalive_time_seconds: float = 60.0
    keepalive_timeout_seconds: float = 20.0
    min_ping_interval_seconds: float = 10.0
    max_connection_idle_seconds: float = 900.0
    max_connection_age_seconds: float = 0.0
    max_connection_age_grace_seconds: float = 300.0

    def budgets(self) -> dict[Kind, int]:
        return {
            Kind.CALLS: self.max_concurrent_calls,
            Kind.STREAMS: self.max_concurrent_streams,
            Kind.LEASE_POLLS: self.max_concurrent_lease_polls,
            Kind.PROBES: self.max_concurrent_probes,
        }

    def grpc_concurrency(self) -> int:
        """grpc's `maximum_concurrent_rpcs`: above every budget together."""
        return sum(self.budgets().values()) + GRPC_SLACK

    def grpc_options(self) -> list[tuple[str, int]]:
        options = [
            ("grpc.max_receive_message_length", self.max_receive_message_bytes),
            ("grpc.max_send_message_length", self.max_send_message_bytes),
            # Soft and hard limit alike: a request over it is refused every time.
            ("grpc.max_metadata_size", self.max_metadata_bytes),
            ("grpc.absolute_max_metadata_size", self.max_metadata_bytes),
            # The server pings an idle connection to find dead peers (and keep NATs open).
            ("grpc.keepalive_time_ms", _ms(self.keepalive_time_seconds)),
            ("grpc.keepalive_timeout_ms", _ms(self.keepalive_timeout_seconds)),
            # Clients may ping, idle or not, but not more often than this; two pings too
            # soon and the server closes the connection (GOAWAY "too_many_pings").
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", _ms(self.min_ping_interval_seconds)),
            ("grpc.http2.max_ping_strikes", 2),
        ]
        if self.max_connection_idle_seconds > 0:
            options.append(("grpc.max_connection_idle_ms", _ms(self.max_connection_idle_seconds)))
        if self.max_connection_age_seconds > 0:
            options.append(("grpc.max_connection_age_ms", _ms(self.max_connection_age_seconds)))
            options.append(
                ("grpc.max_connection_age_grace_ms", _ms(self.max_connection_age_grace_seconds))
            )
        return options


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def parse_size(text: str) -> int:
    """A size in bytes: 4194304, 4MiB, 16KiB, 64kB."""
    match = _SIZE.fullmatch(text.replace("_", ""))
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 4194304, 4MiB, 16KiB)")
    return int(match.group(1)) * unit


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"must be 0 to 604800 seconds: {text}")
    return value


def _size_text(size: int) -> str:
    for unit, scale in (("MiB", MIB), ("KiB", 1024)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


# (field, flag, parse, help); BATCHYARD_<FLAG> in the environment gives the default.
_FLAGS: list[tuple[str, str, Callable[[str], object], str]] = [
    (
        "max_receive_message_bytes",
        "--max-receive-message-size",
        parse_size,
        "largest request message accepted; larger ones get RESOURCE_EXHAUSTED",
    ),
    (
        "max_send_message_bytes",
        "--max-send-message-size",
        parse_size,
        "largest response message sent; larger ones end the call with RESOURCE_EXHAUSTED",
    ),
    (
        "max_metadata_bytes",
        "--max-metadata-size",
        parse_size,
        "largest request metadata (headers) accepted; more gets RESOURCE_EXHAUSTED",
    ),
    (
        "max_concurrent_calls",
        "--max-concurrent-calls",
        _count,
        "short calls served at once (unary calls and log uploads)",
    ),
    (
        "max_concurrent_streams",
        "--max-concurrent-streams",
        _count,
        "followers served at once (TailLogs, WatchRun, DownloadRunResult), apart from the "
        "short calls so they cannot starve them",
    ),
    (
        "max_concurrent_lease_polls",
        "--max-concurrent-lease-polls",
        _count,
        "workers waiting in LeaseRuns at once",
    ),
    (
        "max_concurrent_probes",
        "--max-concurrent-probes",
        _count,
        "health checks and reflection calls served at once",
    ),
    (
        "keepalive_time_seconds",
        "--keepalive-time",
        _seconds,
        "seconds of silence before the server pings a client to see that it is alive",
    ),
    (
        "keepalive_timeout_seconds",
        "--keepalive-timeout",
        _seconds,
        "seconds to wait for a ping's answer before closing the connection",
    ),
    (
        "min_ping_interval_seconds",
        "--min-ping-interval",
        _seconds,
        "clients pinging more often than this are disconnected",
    ),
    (
        "max_connection_idle_seconds",
        "--max-connection-idle",
        _seconds,
        "close a connection without calls after this many seconds (0: never)",
    ),
    (
        "max_connection_age_seconds",
        "--max-connection-age",
        _seconds,
        "ask clients to reconnect after this many seconds, spreading them over replicas "
        "behind a load balancer (0: never)",
    ),
    (
        "max_connection_age_grace_seconds",
        "--max-connection-age-grace",
        _seconds,
        "seconds calls still running get once a connection reached its age",
    ),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The limit flags (in a group of their own) and --reflection/--no-reflection."""
    group = parser.add_argument_group("limits")
    defaults = ServerLimits()
    for name, flag, parse, text in _FLAGS:
        env = "BATCHYARD_" + flag.removeprefix("--").replace("-", "_").upper()
        default = getattr(defaults, name)
        shown = _size_text(default) if parse is parse_size else f"{default:g}"
        group.add_argument(
            flag,
            dest=name,
            type=parse,
            default=os.environ.get(env) or default,  # a string default is parsed too
            metavar="BYTES" if parse is parse_size else "N" if parse is _count else "SECONDS",
            help=f"{text} ({env}; default {shown})",
        )
    group.add_argument(
        "--reflection",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("BATCHYARD_REFLECTION", "1").strip().lower()
        not in ("0", "false", "no", "off"),
        help="serve gRPC server reflection, so grpcurl and buf curl need no proto files "
        "(BATCHYARD_REFLECTION=0 turns it off; default on)",
    )


def from_args(args: argparse.Namespace) -> ServerLimits:
    limits = ServerLimits(**{f.name: getattr(args, f.name) for f in fields(ServerLimits)})
    if limits.max_receive_message_bytes < 1024 or limits.max_send_message_bytes < 1024:
        raise ValueError("message size limits must be at least 1KiB")
    if limits.max_metadata_bytes < 1024:
        raise ValueError("--max-metadata-size must be at least 1KiB")
    if limits.keepalive_time_seconds < 1 or limits.keepalive_timeout_seconds < 1:
        raise ValueError("--keepalive-time and --keepalive-timeout must be at least 1 second")
    return limits
