"""Validation of a job configuration. Paths in the violations are relative to `config`."""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from batchyard.server.domain.errors import FieldViolation
from batchyard.server.domain.ingest_validation import validate_ingest
from batchyard.server.domain.jobs import (
    GitSource,
    InlineSource,
    JobConfig,
    JobType,
    Resources,
    RetryStrategy,
    S3Source,
    Secrets,
    SqlTarget,
    WorkspaceSource,
)

MAX_INLINE_BYTES = 1024 * 1024
MAX_ARGS = 1000
MAX_ARG_BYTES = 64 * 1024
MAX_ENV = 500
MAX_ENV_VALUE_BYTES = 128 * 1024
MAX_RETRIES = 100
MAX_RETRY_DELAY_SECONDS = 24 * 3600
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_RULES = 10
MAX_PATH = 1024
MAX_URL = 2048
PRIORITY_RANGE = (-1000, 1000)

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$")
QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION = re.compile(r"^[a-z0-9-]{0,32}$")
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")
GIT_SCHEMES = {"https", "http", "ssh", "git", "file"}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_config(config: JobConfig, secrets: Secrets) -> list[FieldViolation]:
    """Every violation in the configuration, with paths relative to the config."""
    out: list[FieldViolation] = []
    if config.type is None:
        out.append(FieldViolation("type", "required: one of PYTHON, SQL, SHELL, INGEST"))
    out += _source(config)
    out += _location(config)
    out += _args(config.args)
    out += _env("env", config.env, reserved_clash=None)
    out += _env("secret_env", secrets.env, reserved_clash=config.env)
    out += _retry(config.retry_strategy)
    if config.timeout_seconds is not None and not 0 < config.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        out.append(FieldViolation("timeout", "must be positive and at most 7 days"))
    if config.queue and not QUEUE.match(config.queue):
        out.append(
            FieldViolation("queue", "1 to 100 letters, digits, '.', '_' or '-', starting alnum")
        )
    if not PRIORITY_RANGE[0] <= config.priority <= PRIORITY_RANGE[1]:
        out.append(FieldViolation("priority", "must be between -1000 and 1000"))
    out += _resources(config.resources)
    out += _sql_target(config, secrets)
    out += _ingest(config)
    if len(secrets.git_token) > 4096:
        out.append(FieldViolation("source.git.access_token", "at most 4096 characters"))
    return out


def _ingest(config: JobConfig) -> list[FieldViolation]:
    if config.type != JobType.INGEST:
        return (
            [FieldViolation("ingest", "only for INGEST jobs")] if config.ingest is not None else []
        )
    if config.ingest is None:
        return [FieldViolation("ingest", "required for INGEST jobs: input, format and table")]
    out = validate_ingest(config.ingest)
    if config.source is not None:
        out.append(FieldViolation("source", "an INGEST job has no source: it reads ingest.input"))
    if config.source_location:
        out.append(FieldViolation("source_location", "not used by INGEST jobs"))
    if config.args:
        out.append(FieldViolation("args", "INGEST jobs take no args"))
    return out


def _source(config: JobConfig) -> list[FieldViolation]:
    source = config.source
    if config.type == JobType.INGEST:
        return []
    if source is None:
        if config.type in (JobType.PYTHON, JobType.SQL):
            return [FieldViolation("source", f"required for {config.type.value} jobs")]
        return []
    if isinstance(source, WorkspaceSource):
        problem = relative_path_problem(source.path, allow_empty=True)
        return [FieldViolation("source.workspace.path", problem)] if problem else []
    if isinstance(source, GitSource):
        return _git(source)
    if isinstance(source, S3Source):
        return _s3(source)
    size = len(source.text.encode("utf-8"))
    if size > MAX_INLINE_BYTES:
        return [FieldViolation("source.inline.text", f"{size} bytes; at most 1 MiB")]
    return []


def _git(source: GitSource) -> list[FieldViolation]:
    out = []
    url = source.repo_url
    if not url:
        out.append(FieldViolation("source.git.repo_url", "required"))
    elif url.startswith("-") or CONTROL.search(url) or " " in url or len(url) > MAX_URL:
        out.append(FieldViolation("source.git.repo_url", "not a valid repository URL"))
    elif not SCP_LIKE.match(url):
        parts = urlsplit(url)
        if parts.scheme not in GIT_SCHEMES:
            out.append(
                FieldViolation(
                    "source.git.repo_url", "scheme must be https, http, ssh, git or file"
                )
            )
        elif parts.scheme != "file" and not parts.hostname:
            out.append(FieldViolation("source.git.repo_url", "has no host"))
        elif parts.password is not None or (parts.username and parts.scheme.startswith("http")):
            out.append(
                FieldViolation(
                    "source.git.repo_url", "must not carry credentials; use username/access_token"
                )
            )
    ref = source.reference
    if ref and (ref.startswith("-") or CONTROL.search(ref) or " " in ref or len(ref) > 255):
        out.append(FieldViolation("source.git.reference", "not a valid branch, tag or commit"))
    if CONTROL.search(source.username) or len(source.username) > 255:
        out.append(FieldViolation("source.git.username", "not a valid user name"))
    return out


def _s3(source: S3Source) -> list[FieldViolation]:
    out = []
    parts = urlsplit(source.uri)
    if not source.uri:
        out.append(FieldViolation("source.s3.uri", "required"))
    elif parts.scheme != "s3" or not S3_BUCKET.match(parts.netloc) or CONTROL.search(source.uri):
        out.append(
            FieldViolation("source.s3.uri", "must be s3://bucket/key or s3://bucket/prefix/")
        )
    if not REGION.match(source.region):
        out.append(FieldViolation("source.s3.region", "not a valid region name"))
    if source.endpoint_url:
        endpoint = urlsplit(source.endpoint_url)
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
            out.append(FieldViolation("source.s3.endpoint_url", "must be an http(s):// URL"))
    return out


def relative_path_problem(path: str, *, allow_empty: bool) -> str | None:
    """Why `path` is not a safe path relative to a root, or None if it is."""
    if not path:
        return None if allow_empty else "required"
    if "\x00" in path or CONTROL.search(path):
        return "contains control characters"
    if len(path) > MAX_PATH:
        return f"at most {MAX_PATH} characters"
    if path.startswith(("/", "\\")):
        return "must be relative to the source root, not absolute"
    if ".." in PurePosixPath(path).parts or ".." in path.split("\\"):
        return "must not contain '..'"
    return None


def _location(config: JobConfig) -> list[FieldViolation]:
    location = config.source_location
    if config.type == JobType.INGEST:
        return []
    if config.type == JobType.SHELL and config.source is None:
        if not location:
            return [FieldViolation("source_location", "required: the command to run")]
        if CONTROL.search(location) or len(location) > MAX_PATH:
            return [FieldViolation("source_location", "not a valid command")]
        return []
    allow_empty = isinstance(config.source, InlineSource)
    problem = relative_path_problem(location, allow_empty=allow_empty)
    return [FieldViolation("source_location", problem)] if problem else []


def _args(args: tuple[str, ...]) -> list[FieldViolation]:
    if len(args) > MAX_ARGS:
        return [FieldViolation("args", f"at most {MAX_ARGS} arguments")]
    for i, arg in enumerate(args):
        if "\x00" in arg or len(arg.encode("utf-8")) > MAX_ARG_BYTES:
            return [FieldViolation(f"args[{i}]", "contains NUL or is over 64 KiB")]
    return []


def _env(
    name: str, env: dict[str, str], reserved_clash: dict[str, str] | None
) -> list[FieldViolation]:
    out = []
    if len(env) > MAX_ENV:
        out.append(FieldViolation(name, f"at most {MAX_ENV} variables"))
    for key, value in sorted(env.items()):
        if not ENV_KEY.match(key):
            out.append(FieldViolation(f"{name}.{key}", "key must match [A-Za-z_][A-Za-z0-9_]*"))
        elif key.upper().startswith("BATCHYARD_"):
            out.append(
                FieldViolation(f"{name}.{key}", "BATCHYARD_ variables are set by the worker")
            )
        elif reserved_clash is not None and key in reserved_clash:
            out.append(FieldViolation(f"{name}.{key}", "also set in env; use one or the other"))
        elif "\x00" in value or len(value.encode("utf-8")) > MAX_ENV_VALUE_BYTES:
            out.append(FieldViolation(f"{name}.{key}", "value contains NUL or is over 128 KiB"))
    return out


def _retry(retry: RetryStrategy) -> list[FieldViolation]:
    out = []
    if not 0 <= retry.num_retries <= MAX_RETRIES:
        out.append(FieldViolation("retry_strategy.num_retries", "must be between 0 and 100"))
    if not 0 <= retry.num_infra_retries <= MAX_RETRIES:
        out.append(FieldViolation("retry_strategy.num_infra_retries", "must be between 0 and 100"))
    delay = retry.delay_seconds
    if delay is not None and not 0 <= delay <= MAX_RETRY_DELAY_SECONDS:
        out.append(
            FieldViolation("retry_strategy.delay_between_retries", "must be between 0s and 24h")
        )
    if len(retry.exit_code_rules) > MAX_RULES:
        out.append(FieldViolation("retry_strategy.exit_code_rules", f"at most {MAX_RULES} rules"))
    for i, rule in enumerate(retry.exit_code_rules[:MAX_RULES]):
        path = f"retry_strategy.exit_code_rules[{i}]"
        if not rule.exit_codes or len(rule.exit_codes) > 255:
            out.append(FieldViolation(f"{path}.exit_codes", "1 to 255 exit codes"))
        elif any(not 1 <= c <= 255 for c in rule.exit_codes):
            out.append(FieldViolation(f"{path}.exit_codes", "exit codes are 1 to 255"))
        if rule.action is None:
            out.append(FieldViolation(f"{path}.action", "required: RETRY or EXIT"))
    return out


def _resources(res: Resources) -> list[FieldViolation]:
    out = []
    if not 0 <= res.cpus <= 1024:
        out.append(FieldViolation("resources.cpus", "must be between 0 and 1024"))
    for name in ("memory_bytes", "open_files", "processes", "output_bytes"):
        if getattr(res, name) < 0:
            out.append(FieldViolation(f"resources.{name}", "must not be negative"))
    if res.cpu_time_seconds < 0:
        out.append(FieldViolation("resources.cpu_time", "must not be negative"))
    return out


def _sql_target(config: JobConfig, secrets: Secrets) -> list[FieldViolation]:
    target = config.sql_target
    if config.type not in (JobType.SQL, JobType.INGEST):
        return [FieldViolation("sql_target", "only for SQL and INGEST jobs")] if target else []
    if target is None or not (target.connection or target.uses_dsn):
        return [
            FieldViolation(
                "sql_target", f"required for {config.type.value} jobs: a connection name or a dsn"
            )
        ]
    if target.uses_dsn:
        dsn = secrets.sql_dsn
        if not dsn.startswith(("postgres://", "postgresql://")) or CONTROL.search(dsn):
            return [FieldViolation("sql_target.dsn", "must be a postgres:// or postgresql:// DSN")]
        return []
    if not CONNECTION_NAME.match(target.connection):
        return [FieldViolation("sql_target.connection", "not a valid connection name")]
    return []


def looks_like_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


__all__ = ["SqlTarget", "looks_like_uuid", "relative_path_problem", "validate_config"]
