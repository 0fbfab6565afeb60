"""The server's settings: one frozen object built from flags and BATCHYARD_* variables."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from batchyard.config import Flag, add_flags, choice, duration, integer, path, resolve, text
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
DEV_HTTP_LISTEN = "127.0.0.1:8080"


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
    # Outages of the service (every replica, or the database) up to this long cost no
    # lease: leases are extended by the outage (server/README.md, "Leases across outages").
    max_outage_seconds: float = 300.0
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
    # The HTTP face (Connect, the console, /metrics): "" off; `batchyard dev` turns it on.
    http_listen: str = ""
    # When `http_listen`'s port is taken, serve a free port instead (`batchyard dev`).
    http_listen_any_port: bool = False


LISTEN = Flag(
    "listen", text(metavar="HOST:PORT"), "HOST:PORT to serve gRPC on", default=DEFAULT_LISTEN
)
DATABASE_URL = Flag(
    "database-url",
    text(allow_empty=True, metavar="URL"),
    "PostgreSQL URL; without it the server runs an embedded PostgreSQL",
    env=("BATCHYARD_DATABASE_URL", "DATABASE_URL"),
    secret=True,
)
DATA_DIR = Flag(
    "data-dir",
    path(metavar="DIR"),
    "data directory of the embedded PostgreSQL",
    default_from=lambda _env: default_data_dir(),
    default_text=str(default_data_dir()),
)
POOL_SIZE = Flag("pool-size", integer(1), "database connections", default=10)
GRACE = Flag("grace", duration(0), "time to drain in-flight calls on shutdown", default=10.0)
LEASE_TTL = Flag(
    "lease-ttl",
    duration(0.5, 3600),
    "how long a worker's lease lasts without a heartbeat; workers renew every third of it",
    default=30.0,
)
RESCUE_INTERVAL = Flag(
    "rescue-interval",
    duration(0.05, 600),
    "time between passes of the expired-lease rescuer",
    default=2.0,
)
MAX_OUTAGE = Flag(
    "max-outage",
    duration(0, 86400),
    "longest outage of the service (all servers, or the database) that costs running jobs "
    "no lease: leases are extended by the outage, up to this",
    default=300.0,
)
ARTIFACTS = Flag(
    "artifacts",
    text(metavar="DIR|s3://BUCKET[/PREFIX]"),
    "where workers store result files: a directory shared with the workers, or an S3 "
    "bucket and prefix",
    default_from=lambda _env: default_artifacts(),
    default_text=default_artifacts(),
)
ARTIFACTS_ENDPOINT_URL = Flag(
    "artifacts-endpoint-url",
    text(allow_empty=True, metavar="URL"),
    "endpoint of an S3-compatible store",
)
ARTIFACTS_REGION = Flag(
    "artifacts-region",
    text(allow_empty=True, metavar="REGION"),
    "region of the artifacts bucket (credentials come from the AWS_* environment or profile)",
)
LOG_FORMAT = Flag(
    "log-format",
    choice("auto", "json", "console"),
    "process log format (auto: console on a terminal, else JSON)",
    default="auto",
)
LOG_LEVEL = Flag(
    "log-level", choice("debug", "info", "warning", "error"), "process log level", default="info"
)
HTTP_LISTEN = Flag(
    "http-listen",
    text(allow_empty=True, metavar="HOST:PORT"),
    "HOST:PORT to serve the API over HTTP (Connect: JSON and protobuf), the web console "
    "and /metrics on; empty or `off`: no HTTP port (`batchyard dev` serves "
    f"{DEV_HTTP_LISTEN} unless told `off`)",
    default="",
    default_text="off",
)
FLAGS = (
    LISTEN,
    DATABASE_URL,
    DATA_DIR,
    POOL_SIZE,
    GRACE,
    LEASE_TTL,
    RESCUE_INTERVAL,
    ARTIFACTS,
    ARTIFACTS_ENDPOINT_URL,
    ARTIFACTS_REGION,
    LOG_FORMAT,
    LOG_LEVEL,
    HTTP_LISTEN,
    MAX_OUTAGE,
)
GROUPS: tuple[tuple[str | None, Sequence[Flag[Any]]], ...] = (
    (None, FLAGS),
    ("TLS", server_tls.FLAGS),
    ("limits", server_limits.FLAGS),
    (None, server_secret_keys.FLAGS),
)
"""Every flag of `batchyard server` (and `batchyard dev`), by help group."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `batchyard server` (and `batchyard dev`)."""
    for title, flags in GROUPS:
        add_flags(parser if title is None else parser.add_argument_group(title), flags)


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ServerSettings:
    """The settings the flags and BATCHYARD_* variables (of `env`, default the process's)
    give; ValueError (SettingsError, TlsError, SecretKeyError) naming the flag otherwise."""
    values = resolve(
        [f for _, flags in GROUPS for f in flags], args, os.environ if env is None else env
    )
    database_url = values[DATABASE_URL] or None
    # `batchyard server` and `dev` serve; `server migrate` and `server bootstrap` do not.
    serving = getattr(args, "server_action", None) is None
    return ServerSettings(
        listen=values[LISTEN],
        database_url=database_url,
        data_dir=values[DATA_DIR].resolve(),
        pool_size=values[POOL_SIZE],
        grace_seconds=values[GRACE],
        lease_ttl_seconds=values[LEASE_TTL],
        rescue_interval_seconds=values[RESCUE_INTERVAL],
        max_outage_seconds=values[MAX_OUTAGE],
        log_format=values[LOG_FORMAT],
        log_level=values[LOG_LEVEL],
        artifacts=parse_location(
            values[ARTIFACTS],
            endpoint_url=values[ARTIFACTS_ENDPOINT_URL],
            region=values[ARTIFACTS_REGION],
        ),
        tls=server_tls.from_values(values, values[LISTEN], serving=serving),
        insecure=values[server_tls.INSECURE],
        limits=server_limits.from_values(values),
        reflection=values[server_limits.REFLECTION],
        secret_keys=server_secret_keys.from_values(values, database_url),
        http_listen="" if values[HTTP_LISTEN] == "off" else values[HTTP_LISTEN],
    )
