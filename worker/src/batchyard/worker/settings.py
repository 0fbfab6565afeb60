"""The worker's settings: one frozen object built from flags and ``BATCHYARD_*`` variables.

A flag wins over its environment variable, which wins over the default. Built once in the
command's handler and passed down; nothing reads the environment later.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from batchyard.client.connection import ClientTls, TlsConfigError, choose_tls, split_target
from batchyard.worker.execution.attempt import ExecutionOptions
from batchyard.worker.execution.job_users import JobUsers, parse_job_users
from batchyard.worker.execution.limits import WorkerLimits
from batchyard.worker.execution.sql_targets import ENV_PREFIX as SQL_TARGET_PREFIX
from batchyard.worker.execution.sql_targets import from_environment as sql_targets_from_environment
from batchyard.worker.execution.sql_targets import parse_flag as parse_sql_target
from batchyard.worker.output.collector import DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_OUTPUT_LINES
from batchyard.worker.output.lines import DEFAULT_MAX_LINE_BYTES
from batchyard.worker.results.artifacts import ArtifactLocation, ArtifactStore, parse_location
from batchyard.worker.results.store import (
    DEFAULT_RESULTS_MAX_BYTES,
    DEFAULT_RESULTS_MAX_FILES,
    ResultLimits,
)
from batchyard.worker.shipping.shipper import DEFAULT_FLUSH_INTERVAL, ShippingOptions
from batchyard.worker.shipping.spool import DEFAULT_MAX_MEMORY_BYTES
from batchyard.worker.sources.git_clone import (
    DEFAULT_GIT_TIMEOUT,
    DEFAULT_PROTOCOLS,
    KNOWN_PROTOCOLS,
)
from batchyard.worker.sources.s3 import S3Limits

DEFAULT_SERVER = "localhost:50051"
DEFAULT_SLOTS = 4
DEFAULT_QUEUES = ("default",)
DEFAULT_GRACE = 30.0
DEFAULT_KILL_GRACE = 10.0
MAX_SLOTS = 1000
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_LINE_BYTES_LIMIT = 64_000
"""The server keeps log messages of up to 64 KiB characters (the cut marker included)."""
MAX_FLUSH_INTERVAL = 5.0
MAX_S3_ATTEMPTS = 20
MAX_RESULTS_FILES = 10_000
"""The server takes at most this many results per attempt."""
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([A-Za-z]*)\s*")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}

_T = TypeVar("_T")


class SettingsError(ValueError):
    """A flag or environment variable has a bad value; the message names it."""


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker process is configured with."""

    server: str
    slots: int
    queues: tuple[str, ...]
    workspace_root: Path
    state_dir: Path
    worker_id: str
    grace: float
    """Seconds running attempts get to finish after a shutdown signal."""
    kill_grace: float
    """Seconds between SIGTERM and SIGKILL when a job is stopped."""
    python: str
    """Absolute path of the interpreter that runs PYTHON jobs."""
    job_path: str
    """The PATH jobs get."""
    token: str | None = field(default=None, repr=False)
    tls: ClientTls | None = None
    """TLS to the server (None: plaintext), with the worker's certificate for mutual TLS."""
    log_format: str = "auto"
    log_level: str = "info"
    lease_wait: float = 30.0
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    """A longer line is cut, with a visible marker."""
    max_output_lines: int = DEFAULT_MAX_OUTPUT_LINES
    """Lines of output kept per attempt; the rest is dropped (and counted in one entry)."""
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    """Bytes of output kept per attempt, unless the job's ``resources.output_bytes`` says."""
    log_flush_interval: float = DEFAULT_FLUSH_INTERVAL
    """The longest a line waits in the worker before it is sent to the server."""
    log_spool_memory: int = DEFAULT_MAX_MEMORY_BYTES
    """Bytes of unsent log kept in memory per attempt; more spills to the state directory."""
    git_protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    """The transports GIT sources may use (file only for tests)."""
    git_timeout: float = DEFAULT_GIT_TIMEOUT
    """Seconds a GIT source's fetch may take."""
    s3_limits: S3Limits = field(default_factory=S3Limits)
    """Bounds of S3 source downloads; its timeouts and attempts serve the artifact store too."""
    artifacts: ArtifactLocation | None = None
    """Where result files go; None: nowhere, they are not collected."""
    artifacts_endpoint_url: str | None = None
    artifacts_region: str | None = None
    result_limits: ResultLimits = field(default_factory=ResultLimits)
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    """Resource limits of every attempt: the default and the cap of the jobs' resources."""
    sql_targets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """SQL jobs' connections: name (lower case) → DSN."""
    job_users: JobUsers | None = None
    """The uids the slots' jobs run as; None: the worker's own."""

    def artifact_store(self) -> ArtifactStore | None:
        """The artifact store (no connection made until the first result is stored)."""
        if self.artifacts is None:
            return None
        limits = self.s3_limits
        return self.artifacts.open(
            endpoint_url=self.artifacts_endpoint_url,
            region=self.artifacts_region,
            connect_timeout=limits.connect_timeout,
            read_timeout=limits.read_timeout,
            max_attempts=limits.max_attempts,
        )

    def execution_options(self) -> ExecutionOptions:
        return ExecutionOptions(
            state_dir=self.state_dir,
            workspace_root=self.workspace_root,
            python=self.python,
            job_path=self.job_path,
            kill_grace=self.kill_grace,
            max_line_bytes=self.max_line_bytes,
            max_output_bytes=self.max_output_bytes,
            max_output_lines=self.max_output_lines,
            worker_id=self.worker_id,
            git_protocols=self.git_protocols,
            git_timeout=self.git_timeout,
            s3_limits=self.s3_limits,
            result_limits=self.result_limits,
            sql_targets=self.sql_targets,
            limits=self.limits,
        )

    def shipping_options(self) -> ShippingOptions:
        return ShippingOptions(
            spool_dir=self.state_dir / "spool",
            flush_interval=self.log_flush_interval,
            max_memory_bytes=self.log_spool_memory,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the worker's flags (defaults are applied later, after the environment)."""
    add = parser.add_argument
    add("--server", help=f"server address (BATCHYARD_SERVER; default {DEFAULT_SERVER})")
    add("--slots", help=f"attempts run at once (BATCHYARD_SLOTS; default {DEFAULT_SLOTS})")
    add("--queues", help="comma-separated queues to serve (BATCHYARD_QUEUES; default default)")
    add("--workspace-root", help="root of WORKSPACE sources (BATCHYARD_WORKSPACE_ROOT; default .)")
    add("--state-dir", help="attempt directories go here (BATCHYARD_STATE_DIR)")
    add("--worker-id", help="this worker's id (BATCHYARD_WORKER_ID; default <hostname>-<pid>)")
    add("--grace", help=f"shutdown grace in seconds (BATCHYARD_GRACE; default {DEFAULT_GRACE:g})")
    add(
        "--kill-grace",
        help="seconds from SIGTERM to SIGKILL when a job is stopped "
        f"(BATCHYARD_KILL_GRACE; default {DEFAULT_KILL_GRACE:g})",
    )
    add("--python", help="interpreter for PYTHON jobs (BATCHYARD_PYTHON; default this one)")
    add("--token", help="bearer token for the server (BATCHYARD_TOKEN)")
    add(
        "--tls",
        action="store_const",
        const="1",
        help="connect with TLS (BATCHYARD_TLS=1; also on with a grpcs:// --server or a TLS file)",
    )
    add(
        "--tls-ca",
        metavar="FILE",
        help="PEM CA of the server's certificate (BATCHYARD_TLS_CA; default: the system's)",
    )
    add(
        "--tls-cert",
        metavar="FILE",
        help="PEM client certificate, for a server that requires one (BATCHYARD_TLS_CERT)",
    )
    add("--tls-key", metavar="FILE", help="PEM key of the client certificate (BATCHYARD_TLS_KEY)")
    add("--log-format", choices=LOG_FORMATS, help="process log format (BATCHYARD_LOG_FORMAT)")
    add(
        "--log-level",
        choices=LOG_LEVELS,
        help="process log level (BATCHYARD_LOG_LEVEL; default info)",
    )
    add(
        "--max-line-bytes",
        help="a job's output line is cut past this many bytes, with a visible marker "
        f"(BATCHYARD_MAX_LINE_BYTES; default {DEFAULT_MAX_LINE_BYTES}; e.g. 16KiB)",
    )
    add(
        "--max-output-lines",
        help="lines of output kept per attempt; the rest is dropped and counted "
        f"(BATCHYARD_MAX_OUTPUT_LINES; default {DEFAULT_MAX_OUTPUT_LINES})",
    )
    add(
        "--max-output-bytes",
        help="bytes of output kept per attempt, unless the job sets resources.output_bytes "
        f"(BATCHYARD_MAX_OUTPUT_BYTES; default {DEFAULT_MAX_OUTPUT_BYTES // 1024**2}MiB)",
    )
    add(
        "--log-flush-interval",
        help="seconds a log line may wait in the worker before it is sent "
        f"(BATCHYARD_LOG_FLUSH_INTERVAL; default {DEFAULT_FLUSH_INTERVAL:g})",
    )
    add(
        "--log-spool-memory",
        help="bytes of unsent log kept in memory per attempt before spilling to the state "
        f"directory (BATCHYARD_LOG_SPOOL_MEMORY; default {DEFAULT_MAX_MEMORY_BYTES // 1024**2}MiB)",
    )
    add(
        "--git-protocols",
        help="comma-separated transports GIT sources may use, of "
        f"{', '.join(KNOWN_PROTOCOLS)} (BATCHYARD_GIT_PROTOCOLS; default "
        f"{','.join(DEFAULT_PROTOCOLS)}; file only for tests)",
    )
    add(
        "--git-timeout",
        help="seconds a GIT source's fetch may take, at most the attempt's timeout "
        f"(BATCHYARD_GIT_TIMEOUT; default {DEFAULT_GIT_TIMEOUT:g})",
    )
    _add_s3_arguments(parser)
    _add_artifact_arguments(parser)
    _add_limit_arguments(parser)
    parser.add_argument(
        "--sql-target",
        action="append",
        metavar="NAME=DSN",
        help="a database SQL jobs may name as their target connection (repeatable; or "
        f"{SQL_TARGET_PREFIX}<NAME>=DSN, which keeps the password off the command line)",
    )


def _add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    limits = S3Limits()
    add(
        "--s3-source-max-objects",
        help="objects an S3 source prefix may hold "
        f"(BATCHYARD_S3_SOURCE_MAX_OBJECTS; default {limits.max_objects})",
    )
    add(
        "--s3-source-max-bytes",
        help="bytes an S3 source may download "
        f"(BATCHYARD_S3_SOURCE_MAX_BYTES; default {limits.max_bytes // 1024**3}GiB)",
    )
    add(
        "--s3-connect-timeout",
        help="seconds to connect to S3, for sources and the artifact store "
        f"(BATCHYARD_S3_CONNECT_TIMEOUT; default {limits.connect_timeout:g})",
    )
    add(
        "--s3-read-timeout",
        help="seconds an S3 read may wait, for sources and the artifact store "
        f"(BATCHYARD_S3_READ_TIMEOUT; default {limits.read_timeout:g})",
    )
    add(
        "--s3-max-attempts",
        help="attempts per S3 request, retries of throttling and transient errors included "
        f"(BATCHYARD_S3_MAX_ATTEMPTS; default {limits.max_attempts})",
    )


def _add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    cap = "the default of jobs that set none, and the most a job's resources may ask"
    add(
        "--max-memory",
        help=f"address space of each job process, e.g. 2GiB: {cap} (BATCHYARD_MAX_MEMORY)",
    )
    add(
        "--max-cpu-time",
        help=f"CPU seconds of each job process: {cap} (BATCHYARD_MAX_CPU_TIME)",
    )
    add(
        "--max-open-files",
        help=f"open files of each job process: {cap} (BATCHYARD_MAX_OPEN_FILES)",
    )
    add(
        "--max-processes",
        help=f"processes of the jobs' user (RLIMIT_NPROC, not applied to root): {cap} "
        "(BATCHYARD_MAX_PROCESSES)",
    )
    add(
        "--job-users",
        metavar="FIRST_UID[:COUNT]",
        help="run the job of slot i as uid and gid FIRST_UID+i, with no supplementary groups "
        "and no account needed, so concurrent jobs cannot read each other's environment or "
        "files; COUNT uids (default: --slots), a range no account uses; the worker must run "
        "as root (BATCHYARD_JOB_USERS; default: jobs run as the worker's user)",
    )


def _add_artifact_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--artifacts",
        help="where result files go: a directory or s3://BUCKET[/PREFIX], the server's too "
        "(BATCHYARD_ARTIFACTS; default ${XDG_DATA_HOME:-~/.local/share}/batchyard/artifacts)",
    )
    add(
        "--artifacts-endpoint-url",
        help="endpoint of an S3-compatible artifact store (BATCHYARD_ARTIFACTS_ENDPOINT_URL)",
    )
    add("--artifacts-region", help="region of the S3 artifact store (BATCHYARD_ARTIFACTS_REGION)")
    add(
        "--results-max-bytes",
        help="bytes of result files stored per attempt; a file past it is skipped "
        f"(BATCHYARD_RESULTS_MAX_BYTES; default {DEFAULT_RESULTS_MAX_BYTES // 1024**3}GiB)",
    )
    add(
        "--results-max-files",
        help=f"result files stored per attempt, at most {MAX_RESULTS_FILES} "
        f"(BATCHYARD_RESULTS_MAX_FILES; default {DEFAULT_RESULTS_MAX_FILES})",
    )


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, *, euid: int | None = None
) -> WorkerSettings:
    """Builds the settings from parsed flags and the environment; raises SettingsError.
    ``euid``: the worker's effective uid (default: this process's)."""
    env = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid

    def value(name: str, parse: Callable[[str], _T], default: _T) -> _T:
        flag = getattr(args, name, None)
        variable = "BATCHYARD_" + name.upper()
        raw = flag if flag is not None else env.get(variable)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            origin = "--" + name.replace("_", "-") if flag is not None else variable
            raise SettingsError(f"{origin}: {exc}") from None

    slots = value("slots", _slots, DEFAULT_SLOTS)
    return WorkerSettings(
        server=value("server", _server, DEFAULT_SERVER),
        slots=slots,
        queues=value("queues", _queues, DEFAULT_QUEUES),
        workspace_root=value("workspace_root", _directory, _directory(".")),
        state_dir=value("state_dir", _state_dir, _default_state_dir(env)),
        worker_id=value("worker_id", _worker_id, f"{socket.gethostname()}-{os.getpid()}"),
        grace=value("grace", _seconds, DEFAULT_GRACE),
        kill_grace=value("kill_grace", _seconds, DEFAULT_KILL_GRACE),
        python=value("python", lambda raw: _interpreter(raw, env), sys.executable),
        job_path=env.get("PATH") or os.defpath,
        token=value("token", _non_empty, None),
        tls=_client_tls(
            value("server", _server, DEFAULT_SERVER),
            value("tls", _switch, None),
            *(value(name, _file, None) for name in ("tls_ca", "tls_cert", "tls_key")),
        ),
        log_format=value("log_format", _log_format, "auto"),
        log_level=value("log_level", _log_level, "info"),
        max_line_bytes=value("max_line_bytes", _line_bytes, DEFAULT_MAX_LINE_BYTES),
        max_output_lines=value("max_output_lines", _count, DEFAULT_MAX_OUTPUT_LINES),
        max_output_bytes=value("max_output_bytes", _byte_size, DEFAULT_MAX_OUTPUT_BYTES),
        log_flush_interval=value("log_flush_interval", _flush_interval, DEFAULT_FLUSH_INTERVAL),
        log_spool_memory=value("log_spool_memory", _byte_size, DEFAULT_MAX_MEMORY_BYTES),
        git_protocols=value("git_protocols", _git_protocols, DEFAULT_PROTOCOLS),
        git_timeout=value("git_timeout", _positive_seconds, DEFAULT_GIT_TIMEOUT),
        s3_limits=S3Limits(
            max_objects=value("s3_source_max_objects", _count, S3Limits.max_objects),
            max_bytes=value("s3_source_max_bytes", _byte_size, S3Limits.max_bytes),
            connect_timeout=value(
                "s3_connect_timeout", _positive_seconds, S3Limits.connect_timeout
            ),
            read_timeout=value("s3_read_timeout", _positive_seconds, S3Limits.read_timeout),
            max_attempts=value("s3_max_attempts", _attempts, S3Limits.max_attempts),
        ),
        artifacts=value("artifacts", parse_location, parse_location(_default_artifacts(env))),
        artifacts_endpoint_url=value("artifacts_endpoint_url", _endpoint_url, None),
        artifacts_region=value("artifacts_region", _non_empty, None),
        result_limits=ResultLimits(
            max_bytes=value("results_max_bytes", _byte_size, DEFAULT_RESULTS_MAX_BYTES),
            max_files=value("results_max_files", _results_files, DEFAULT_RESULTS_MAX_FILES),
        ),
        limits=WorkerLimits(
            memory_bytes=value("max_memory", _byte_size, None),
            cpu_seconds=value("max_cpu_time", _cpu_seconds, None),
            open_files=value("max_open_files", _count, None),
            processes=value("max_processes", _count, None),
        ),
        sql_targets=_sql_targets(getattr(args, "sql_target", None) or [], env),
        job_users=value(
            "job_users", lambda raw: parse_job_users(raw, slots=slots, euid=euid), None
        ),
    )


def _sql_targets(flags: list[str], env: Mapping[str, str]) -> dict[str, str]:
    """``BATCHYARD_SQL_TARGET_<NAME>`` variables, then ``--sql-target`` flags over them."""
    try:
        targets = sql_targets_from_environment(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    for raw in flags:
        try:
            name, dsn = parse_sql_target(raw)
        except ValueError as exc:
            raise SettingsError(f"--sql-target: {exc}") from None
        targets[name] = dsn
    return targets


def _server(raw: str) -> str:
    server = _non_empty(raw)
    split_target(server)  # an unknown scheme raises (TlsConfigError is a ValueError)
    return server


def _switch(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError("must be 1/true/yes/on or 0/false/no/off")
    return value in ("1", "true", "yes", "on")


def _file(raw: str) -> Path:
    path = Path(raw).expanduser().absolute()
    if not path.is_file():
        raise ValueError(f"{raw!r} is not a file")
    return path


def _client_tls(
    server: str, enabled: bool | None, ca: Path | None, cert: Path | None, key: Path | None
) -> ClientTls | None:
    """The TLS to the server (read once now, so a wrong file fails at start-up)."""
    tls = choose_tls(server, enabled, ca, cert, key)[1]
    if tls is not None:
        try:
            tls.credentials()
        except TlsConfigError as exc:
            raise SettingsError(str(exc)) from None
    return tls


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("may not be empty")
    return raw.strip()


def _slots(raw: str) -> int:
    slots = int(raw)
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"must be between 1 and {MAX_SLOTS}")
    return slots


def _queues(raw: str) -> tuple[str, ...]:
    queues = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not queues:
        raise ValueError("needs at least one queue")
    return queues


def _seconds(raw: str) -> float:
    seconds = float(raw)
    if not 0 <= seconds < 7 * 24 * 3600:
        raise ValueError("must be a number of seconds, 0 or more")
    return seconds


def _positive_seconds(raw: str) -> float:
    seconds = _seconds(raw)
    if seconds <= 0:
        raise ValueError("must be more than 0 seconds")
    return seconds


def _cpu_seconds(raw: str) -> int:
    """Whole CPU seconds (RLIMIT_CPU's unit), rounded up."""
    return math.ceil(_positive_seconds(raw))


def _attempts(raw: str) -> int:
    attempts = int(raw)
    if not 1 <= attempts <= MAX_S3_ATTEMPTS:
        raise ValueError(f"must be between 1 and {MAX_S3_ATTEMPTS}")
    return attempts


def _results_files(raw: str) -> int:
    count = _count(raw)
    if count > MAX_RESULTS_FILES:
        raise ValueError(f"must be at most {MAX_RESULTS_FILES} (the server's limit per attempt)")
    return count


def _default_artifacts(env: Mapping[str, str]) -> str:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "batchyard" / "artifacts")


def _endpoint_url(raw: str) -> str:
    url = raw.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{raw!r} must start with http:// or https://")
    return url


def _git_protocols(raw: str) -> tuple[str, ...]:
    protocols = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    unknown = [p for p in protocols if p not in KNOWN_PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown transport {unknown[0]!r} (known: {', '.join(KNOWN_PROTOCOLS)})")
    if not protocols:
        raise ValueError("needs at least one transport")
    return protocols


def _count(raw: str) -> int:
    count = int(raw.replace("_", ""))
    if count < 1:
        raise ValueError("must be 1 or more")
    return count


def _byte_size(raw: str) -> int:
    """A size in bytes: 1048576, 64MiB, 16KiB, 1G (k/M/G are powers of 1000)."""
    match = _SIZE.fullmatch(raw.replace("_", ""))
    unit = _SIZE_UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"{raw!r} is not a size (e.g. 1048576, 64MiB, 16KiB)")
    size = int(float(match.group(1)) * unit)
    if size < 1:
        raise ValueError("must be 1 byte or more")
    return size


def _line_bytes(raw: str) -> int:
    size = _byte_size(raw)
    if size > MAX_LINE_BYTES_LIMIT:
        raise ValueError(f"must be at most {MAX_LINE_BYTES_LIMIT} bytes")
    return size


def _flush_interval(raw: str) -> float:
    seconds = float(raw)
    if not 0 <= seconds <= MAX_FLUSH_INTERVAL:
        raise ValueError(f"must be between 0 and {MAX_FLUSH_INTERVAL:g} seconds")
    return seconds


def _worker_id(raw: str) -> str:
    worker_id = raw.strip()
    if not 1 <= len(worker_id) <= 200 or not all("!" <= c <= "~" for c in worker_id):
        raise ValueError("must be 1 to 200 printable ASCII characters without spaces")
    return worker_id


def _directory(raw: str) -> Path:
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"{raw!r} is not a directory")
    return path


def _state_dir(raw: str) -> Path:
    if "\n" in raw or "\x00" in raw:
        raise ValueError("may not contain a line break or NUL")
    return Path(raw).expanduser().absolute()


def _default_state_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "batchyard" / "worker"


def _interpreter(raw: str, env: Mapping[str, str]) -> str:
    """An absolute interpreter path, looked up once (symlinks kept: a venv's python is one)."""
    found = shutil.which(raw, path=env.get("PATH") or os.defpath) if "/" not in raw else raw
    if found is None or not os.access(found, os.X_OK):
        raise ValueError(f"{raw!r} is not an executable interpreter")
    return str(Path(found).absolute())


def _log_level(raw: str) -> str:
    if raw not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return raw


def _log_format(raw: str) -> str:
    if raw not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return raw
