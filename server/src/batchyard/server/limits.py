"""The server's limits: message and metadata sizes, concurrency budgets, keepalive and
connection lifetimes — their flags, and the grpc server options they become."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from batchyard.config import Flag, Values, duration, integer, size, switch

MIB = 1024 * 1024
GRPC_SLACK = 16
"""grpc's own concurrency limit sits this far above the sum of the budgets (calls to
unknown methods, which no budget counts)."""


class Kind(StrEnum):
    """The kinds of call that have a concurrency budget of their own (api/budgets.py)."""

    CALLS = "calls"
    """Short calls: unary, and client-streaming uploads (AppendLogs)."""
    STREAMS = "streams"
    """Server-streaming followers and downloads."""
    LEASE_POLLS = "lease_polls"
    """Workers waiting in LeaseRuns."""
    PROBES = "probes"
    """Health checks and reflection (served without a token)."""


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


WEEK = 7 * 24 * 3600.0
_DEFAULTS = ServerLimits()


def _limit(name: str, field: str, kind: Any, help: str) -> Flag[Any]:
    return Flag(name, kind, help, default=getattr(_DEFAULTS, field))


# Field of ServerLimits -> its flag (BATCHYARD_<FLAG> is its variable).
LIMIT_FLAGS: dict[str, Flag[Any]] = {
    "max_receive_message_bytes": _limit(
        "max-receive-message-size",
        "max_receive_message_bytes",
        size(1024),
        "largest request message accepted; larger ones get RESOURCE_EXHAUSTED",
    ),
    "max_send_message_bytes": _limit(
        "max-send-message-size",
        "max_send_message_bytes",
        size(1024),
        "largest response message sent; larger ones end the call with RESOURCE_EXHAUSTED",
    ),
    "max_metadata_bytes": _limit(
        "max-metadata-size",
        "max_metadata_bytes",
        size(1024),
        "largest request metadata (headers) accepted; more gets RESOURCE_EXHAUSTED",
    ),
    "max_concurrent_calls": _limit(
        "max-concurrent-calls",
        "max_concurrent_calls",
        integer(1),
        "short calls served at once (unary calls and log uploads)",
    ),
    "max_concurrent_streams": _limit(
        "max-concurrent-streams",
        "max_concurrent_streams",
        integer(1),
        "followers served at once (TailLogs, WatchRun, DownloadRunResult), apart from the "
        "short calls so they cannot starve them",
    ),
    "max_concurrent_lease_polls": _limit(
        "max-concurrent-lease-polls",
        "max_concurrent_lease_polls",
        integer(1),
        "workers waiting in LeaseRuns at once",
    ),
    "max_concurrent_probes": _limit(
        "max-concurrent-probes",
        "max_concurrent_probes",
        integer(1),
        "health checks and reflection calls served at once",
    ),
    "keepalive_time_seconds": _limit(
        "keepalive-time",
        "keepalive_time_seconds",
        duration(1, WEEK),
        "silence before the server pings a client to see that it is alive",
    ),
    "keepalive_timeout_seconds": _limit(
        "keepalive-timeout",
        "keepalive_timeout_seconds",
        duration(1, WEEK),
        "how long to wait for a ping's answer before closing the connection",
    ),
    "min_ping_interval_seconds": _limit(
        "min-ping-interval",
        "min_ping_interval_seconds",
        duration(0, WEEK),
        "clients pinging more often than this are disconnected",
    ),
    "max_connection_idle_seconds": _limit(
        "max-connection-idle",
        "max_connection_idle_seconds",
        duration(0, WEEK),
        "close a connection without calls after this long (0: never)",
    ),
    "max_connection_age_seconds": _limit(
        "max-connection-age",
        "max_connection_age_seconds",
        duration(0, WEEK),
        "ask clients to reconnect after this long, spreading them over replicas "
        "behind a load balancer (0: never)",
    ),
    "max_connection_age_grace_seconds": _limit(
        "max-connection-age-grace",
        "max_connection_age_grace_seconds",
        duration(0, WEEK),
        "how long calls still running get once a connection reached its age",
    ),
}
REFLECTION = Flag(
    "reflection",
    switch(),
    "serve gRPC server reflection, so grpcurl and buf curl need no proto files",
    default=True,
    presence=True,
    negatable=True,
)
FLAGS: Sequence[Flag[Any]] = (*LIMIT_FLAGS.values(), REFLECTION)
"""The limit flags (in a group of their own) and --reflection/--no-reflection."""


def from_values(values: Values) -> ServerLimits:
    return ServerLimits(**{field: values[flag] for field, flag in LIMIT_FLAGS.items()})
