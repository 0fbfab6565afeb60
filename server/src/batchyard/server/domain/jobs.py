"""A job's configuration: what to run, from where, how often to retry, for how long."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class JobType(StrEnum):
    PYTHON = "PYTHON"
    SQL = "SQL"
    SHELL = "SHELL"
    INGEST = "INGEST"


class ExitCodeAction(StrEnum):
    RETRY = "RETRY"
    EXIT = "EXIT"


@dataclass(frozen=True)
class WorkspaceSource:
    path: str = ""


@dataclass(frozen=True)
class GitSource:
    repo_url: str = ""
    reference: str = ""
    username: str = ""
    submodules: bool = False


@dataclass(frozen=True)
class S3Source:
    uri: str = ""
    region: str = ""
    endpoint_url: str = ""


@dataclass(frozen=True)
class InlineSource:
    text: str = ""


Source = WorkspaceSource | GitSource | S3Source | InlineSource


@dataclass(frozen=True)
class ExitCodeRule:
    exit_codes: tuple[int, ...] = ()
    # None when the caller sent an unknown or unset action (rejected by validation).
    action: ExitCodeAction | None = None


DEFAULT_INFRA_RETRIES = 3
"""Retries of attempts lost with their worker a strategy allows unless it says."""


@dataclass(frozen=True)
class RetryStrategy:
    num_retries: int = 0
    # None means the default (60 s).
    delay_seconds: float | None = None
    retry_on_timeout: bool = False
    exit_code_rules: tuple[ExitCodeRule, ...] = ()
    # Retries of attempts lost with their worker, before they spend `num_retries`.
    num_infra_retries: int = DEFAULT_INFRA_RETRIES


@dataclass(frozen=True)
class Resources:
    cpus: float = 0.0
    memory_bytes: int = 0
    cpu_time_seconds: float = 0.0
    open_files: int = 0
    processes: int = 0
    output_bytes: int = 0


@dataclass(frozen=True)
class SqlTarget:
    """Either an operator-configured connection name, or a DSN kept in the secrets."""

    connection: str = ""
    uses_dsn: bool = False


@dataclass(frozen=True)
class Secrets:
    """The write-only parts of a configuration. Never returned, never logged."""

    env: dict[str, str] = field(default_factory=dict)
    git_token: str = ""
    sql_dsn: str = ""

    def __repr__(self) -> str:  # keep values out of tracebacks and debug logs
        return f"Secrets(env={sorted(self.env)}, git_token={'***' if self.git_token else ''})"


@dataclass(frozen=True)
class JobConfig:
    # None when unset or unknown (rejected by validation).
    type: JobType | None = None
    source: Source | None = None
    source_location: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    retry_strategy: RetryStrategy = field(default_factory=RetryStrategy)
    # None means the default (60 minutes).
    timeout_seconds: float | None = None
    queue: str = ""
    priority: int = 0
    resources: Resources = field(default_factory=Resources)
    sql_target: SqlTarget | None = None
    # An INGEST job's IngestConfig in its protobuf JSON form (field names as in the
    # proto), checked by `ingest_validation`; None for other jobs.
    ingest: dict[str, Any] | None = None


DEFAULT_QUEUE = "default"
DEFAULT_TIMEOUT_SECONDS = 3600.0
DEFAULT_RETRY_DELAY_SECONDS = 60.0
DEFAULT_SOURCE_LOCATION = {
    JobType.PYTHON: "main.py",
    JobType.SQL: "query.sql",
    JobType.SHELL: "main.sh",
}


def with_defaults(config: JobConfig) -> JobConfig:
    """Fill in what the caller may leave out (the queue, an inline file's name)."""
    location = config.source_location
    if not location and isinstance(config.source, InlineSource) and config.type is not None:
        location = DEFAULT_SOURCE_LOCATION[config.type]
    return JobConfig(
        type=config.type,
        source=config.source,
        source_location=location,
        args=config.args,
        env=config.env,
        retry_strategy=config.retry_strategy,
        timeout_seconds=config.timeout_seconds,
        queue=config.queue or DEFAULT_QUEUE,
        priority=config.priority,
        resources=config.resources,
        sql_target=config.sql_target,
        ingest=config.ingest,
    )
