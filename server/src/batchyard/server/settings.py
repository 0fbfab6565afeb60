"""The server's settings: one frozen object built from flags and BATCHYARD_* variables."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from batchyard.server import limits as server_limits
from batchyard.server import secret_keys as server_secret_keys
from batchyard.server import tls as server_tls
from batchyard.server.artifacts.location import (
    ArtifactLocation,
    default_artifacts,
    parse_location,
)
from batchyard.server.limits import ServerLimits
from batchyard.server.secrets_crypto import SecretKey
from batchyard.server.tls import ServerTls

DEFAULT_LISTEN = "127.0.0.1:50051"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("batchyard")) / "postgres"


@dataclass(frozen=True)
class ServerSettings:
    listen: str = DEFAULT_LISTEN
    # None: start the embedded PostgreSQL in `data_dir`.
    database_url: str | None = None
    data_dir: Path = Path()
    pool_size: int = 10
    grace_seconds: float = 10.0
    lease_ttl_seconds: float = 30.0
    rescue_interval_seconds: float = 2.0
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    artifacts: ArtifactLocation = field(default_factory=lambda: parse_location(default_artifacts()))
    # None: plaintext, which only a loopback address gets unless `insecure`.
    tls: ServerTls | None = None
    insecure: bool = False
    limits: ServerLimits = field(default_factory=ServerLimits)
    reflection: bool = True
    # Keys sealing job secrets at rest, the first seals. Empty: the embedded database's
    # key file (made on first start); a server with `database_url` refuses to start.
    secret_keys: tuple[SecretKey, ...] = ()


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"BATCHYARD_{name}", default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `batchyard server` (and `batchyard dev`); defaults come from the env."""
    parser.add_argument(
        "--listen",
        default=_env("LISTEN", DEFAULT_LISTEN),
        help="HOST:PORT to serve gRPC on (BATCHYARD_LISTEN; default %(default)s)",
    )
    parser.add_argument(
        "--database-url",
        default=_env("DATABASE_URL") or os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (BATCHYARD_DATABASE_URL or DATABASE_URL); "
        "without it the server runs an embedded PostgreSQL",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("DATA_DIR") or default_data_dir()),
        help="data directory of the embedded PostgreSQL (BATCHYARD_DATA_DIR; default %(default)s)",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=int(_env("POOL_SIZE", "10") or 10),
        help="database connections (BATCHYARD_POOL_SIZE; default %(default)s)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=float(_env("GRACE", "10") or 10),
        help="seconds to drain in-flight calls on shutdown (BATCHYARD_GRACE; default %(default)s)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=float(_env("LEASE_TTL", "30") or 30),
        help="seconds a worker's lease lasts without a heartbeat; workers renew every third "
        "of it (BATCHYARD_LEASE_TTL; default %(default)s)",
    )
    parser.add_argument(
        "--rescue-interval",
        type=float,
        default=float(_env("RESCUE_INTERVAL", "2") or 2),
        help="seconds between passes of the expired-lease rescuer "
        "(BATCHYARD_RESCUE_INTERVAL; default %(default)s)",
    )
    parser.add_argument(
        "--artifacts",
        default=_env("ARTIFACTS") or default_artifacts(),
        metavar="DIR|s3://BUCKET[/PREFIX]",
        help="where workers store result files: a directory shared with the workers, or an "
        "S3 bucket and prefix (BATCHYARD_ARTIFACTS; default %(default)s)",
    )
    parser.add_argument(
        "--artifacts-endpoint-url",
        default=_env("ARTIFACTS_ENDPOINT_URL"),
        metavar="URL",
        help="endpoint of an S3-compatible store (BATCHYARD_ARTIFACTS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--artifacts-region",
        default=_env("ARTIFACTS_REGION"),
        metavar="REGION",
        help="region of the artifacts bucket (BATCHYARD_ARTIFACTS_REGION; credentials come "
        "from the AWS_* environment or profile)",
    )
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default=_env("LOG_FORMAT", "auto"),
        help="process log format (BATCHYARD_LOG_FORMAT; auto: console on a terminal, else JSON)",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=_env("LOG_LEVEL", "info"),
        help="process log level (BATCHYARD_LOG_LEVEL; default %(default)s)",
    )
    server_tls.add_arguments(parser)
    server_limits.add_arguments(parser)
    server_secret_keys.add_arguments(parser)


def from_args(args: argparse.Namespace) -> ServerSettings:
    if args.pool_size < 1:
        raise ValueError("--pool-size must be at least 1")
    if args.grace < 0:
        raise ValueError("--grace must not be negative")
    if not 0.5 <= args.lease_ttl <= 3600:
        raise ValueError("--lease-ttl must be between 0.5 and 3600 seconds")
    if not 0.05 <= args.rescue_interval <= 600:
        raise ValueError("--rescue-interval must be between 0.05 and 600 seconds")
    # `batchyard server` and `dev` serve; `server migrate` and `server bootstrap` do not.
    tls = server_tls.from_args(args, serving=getattr(args, "server_action", None) is None)
    return ServerSettings(
        listen=args.listen,
        database_url=args.database_url or None,
        data_dir=args.data_dir.expanduser().resolve(),
        pool_size=args.pool_size,
        grace_seconds=args.grace,
        lease_ttl_seconds=args.lease_ttl,
        rescue_interval_seconds=args.rescue_interval,
        log_format=args.log_format,
        log_level=args.log_level,
        artifacts=parse_location(
            args.artifacts, endpoint_url=args.artifacts_endpoint_url, region=args.artifacts_region
        ),
        tls=tls,
        insecure=args.insecure,
        limits=server_limits.from_args(args),
        reflection=args.reflection,
        secret_keys=server_secret_keys.from_args(args),
    )
