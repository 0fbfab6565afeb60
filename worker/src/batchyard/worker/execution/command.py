"""The program an attempt executes: its argv, working directory, environment and user.

No shell is involved, so arguments are never re-interpreted:

* PYTHON → ``[<python>, <source root>/<source_location>, *args]``, with the interpreter path
  resolved once when the worker starts;
* SQL → ``[<worker's python>, -I, -m, batchyard.worker.sql_runner, <source root>/<file>]``:
  the runner (:mod:`batchyard.worker.sql_runner`) is part of the worker's installation, so
  it runs on the worker's own interpreter (``sys.executable``), not on ``--python``, which
  may be another environment without asyncpg; ``-I`` keeps the job's ``PYTHON*`` variables
  and the working directory out of the runner's imports. The target's DSN is added to the
  runner's environment only (``BATCHYARD_SQL_DSN``), never to its arguments;
* INGEST → ``[<worker's python>, -I, -m, batchyard.worker.ingest_runner]`` the same way,
  with the job's ``IngestConfig`` (protobuf JSON) in ``BATCHYARD_INGEST_CONFIG``, the
  target's DSN in ``BATCHYARD_SQL_DSN`` and the worker's own ``AWS_*`` credentials and
  settings (:data:`AWS_VARIABLES`): the runner reads S3 with the worker's S3 code;
* SHELL with a source → ``[<source root>/<source_location>, *args]`` when the file starts
  with ``#!`` (or is an ELF binary), else ``["/bin/sh", <file>, *args]`` the way POSIX
  ``execvp`` runs a script without an interpreter line;
* SHELL without a source → ``[<command>, *args]``, ``source_location`` being a command name
  looked up on the job's PATH, or an absolute path.

The working directory is always the attempt's ``work/`` directory (script paths are absolute),
so attempts never trample each other even when they run the same workspace in place.

The environment is deliberately small — not the worker's own environment, which may hold the
worker's credentials: PATH, HOME (the attempt directory), TMPDIR, LANG, then the job's
``env`` and ``secret_env``, then the ``BATCHYARD_*`` variables of the attempt (and a SQL
job's DSN). It is not part of the command's ``repr``.

The user is the worker's own, or with ``--job-users`` the uid of the attempt's slot (its
directory's owner; see :mod:`~batchyard.worker.execution.job_users`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from google.protobuf import json_format

from batchyard.v1 import job_pb2
from batchyard.worker.execution.directories import AttemptPaths
from batchyard.worker.execution.sql_targets import DSN_VARIABLE, target_dsn
from batchyard.worker.sources.port import (
    SourceError,
    job_type_name,
    resolve_inside,
    source_location,
)

POSIX_SHELL = "/bin/sh"
SQL_RUNNER = "batchyard.worker.sql_runner"
INGEST_RUNNER = "batchyard.worker.ingest_runner"
INGEST_CONFIG_VARIABLE = "BATCHYARD_INGEST_CONFIG"
"""The ingest runner's variable for the job's IngestConfig (protobuf JSON)."""
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_CA_BUNDLE",
)
"""The worker's own S3 credentials and settings an ingest runner gets (S3 access is the
worker's, as for S3 sources, never the job's)."""
_DIRECT_EXEC_MAGIC = (b"#!", b"\x7fELF")


@dataclass(frozen=True)
class Command:
    """What to execute for an attempt."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(repr=False)
    uid: int | None = None
    """The uid (and gid) the job runs as, with no supplementary groups (``--job-users``);
    None: the worker's own."""


def job_environment(
    config: job_pb2.JobConfig, *, run: str, attempt: int, paths: AttemptPaths, path: str
) -> dict[str, str]:
    """The job's whole environment (see the module docstring for the order)."""
    env = {
        "PATH": path,
        "HOME": str(paths.root),
        "TMPDIR": str(paths.root),
        "LANG": "C.UTF-8",
    }
    if config.type == job_pb2.JOB_TYPE_PYTHON:
        env["PYTHONUNBUFFERED"] = "1"  # so output and ::progress lines arrive live
    env.update(config.env)
    env.update(config.secret_env)
    env.update(
        BATCHYARD_RUN_ID=run,
        BATCHYARD_ATTEMPT=str(attempt),
        BATCHYARD_PAYLOAD_PATH=str(paths.payload),
        BATCHYARD_OUTPUT_DIR=str(paths.output),
    )
    return env


@dataclass(frozen=True)
class _Job:
    """What a job type's program is made of."""

    config: job_pb2.JobConfig
    root: Path | None
    env: Mapping[str, str] = field(repr=False)
    python: str
    sql_targets: Mapping[str, str] = field(repr=False)

    def script(self) -> Path:
        """The job's file below its source root (a source is required)."""
        if self.root is None:
            raise SourceError(f"a {job_type_name(self.config)} job needs a source")
        return _source_file(self.root, source_location(self.config))


Program = Callable[[_Job], tuple[tuple[str, ...], Mapping[str, str]]]
"""A job type's argv and environment."""


def _python_program(job: _Job) -> tuple[tuple[str, ...], Mapping[str, str]]:
    return (job.python, str(job.script()), *job.config.args), job.env


def _sql_program(job: _Job) -> tuple[tuple[str, ...], Mapping[str, str]]:
    if job.root is None:
        raise SourceError(f"a {job_type_name(job.config)} job needs a source")
    dsn = target_dsn(job.config.sql_target, job.sql_targets)
    argv = (_runner_python(), "-I", "-m", SQL_RUNNER, str(job.script()), *job.config.args)
    return argv, {**job.env, DSN_VARIABLE: dsn}


def _ingest_program(job: _Job) -> tuple[tuple[str, ...], Mapping[str, str]]:
    dsn = target_dsn(job.config.sql_target, job.sql_targets)
    aws = {name: os.environ[name] for name in AWS_VARIABLES if os.environ.get(name)}
    config = json_format.MessageToJson(job.config.ingest, indent=None)
    argv = (_runner_python(), "-I", "-m", INGEST_RUNNER)
    return argv, {**job.env, **aws, INGEST_CONFIG_VARIABLE: config, DSN_VARIABLE: dsn}


def _shell_program(job: _Job) -> tuple[tuple[str, ...], Mapping[str, str]]:
    args = tuple(job.config.args)
    if job.root is not None:
        return (*_script_argv(job.script()), *args), job.env
    path = job.env.get("PATH", os.defpath)
    return (find_command(job.config.source_location, path), *args), job.env


PROGRAMS: Mapping[int, Program] = {
    job_pb2.JOB_TYPE_PYTHON: _python_program,
    job_pb2.JOB_TYPE_SQL: _sql_program,
    job_pb2.JOB_TYPE_SHELL: _shell_program,
    job_pb2.JOB_TYPE_INGEST: _ingest_program,
}
"""Each job type's program (a new type, such as a runner subprocess, is one entry)."""


def build_command(
    config: job_pb2.JobConfig,
    source_root: Path | None,
    *,
    env: Mapping[str, str],
    paths: AttemptPaths,
    python: str,
    sql_targets: Mapping[str, str] | None = None,
) -> Command:
    """The command for the job; raises SourceError when the program cannot be found (or a
    SQL job's target is not configured)."""
    program = PROGRAMS.get(config.type)
    if program is None:
        raise SourceError("the job has no valid type")
    argv, job_env = program(_Job(config, source_root, env, python, sql_targets or {}))
    return Command(argv=argv, cwd=paths.root, env=job_env, uid=paths.uid)


def find_command(command: str, path: str) -> str:
    """A SHELL command: an absolute path, or a name looked up on ``path``."""
    if not command:
        raise SourceError("a shell job without a source needs a command in source_location")
    if "\x00" in command:
        raise SourceError("the command contains a NUL character")
    if "/" in command:
        if not PurePosixPath(command).is_absolute():
            raise SourceError(f"command {command!r} must be a name on PATH or an absolute path")
        if not (Path(command).is_file() and os.access(command, os.X_OK)):
            raise SourceError(f"command {command!r} is not an executable file")
        return command
    found = shutil.which(command, path=path)
    if found is None:
        raise SourceError(f"command {command!r} not found on PATH")
    return found


def _runner_python() -> str:
    """The worker's own interpreter, which can import the runner and asyncpg."""
    if not sys.executable:
        raise SourceError("the worker cannot name its own interpreter to run sql jobs")
    return sys.executable


def _source_file(root: Path, location: str) -> Path:
    target = resolve_inside(root, location, "source_location")
    if not target.is_file():
        raise SourceError(f"source_location {location!r} is not a file")
    return target


def _script_argv(program: Path) -> tuple[str, ...]:
    try:
        with program.open("rb") as file:
            head = file.read(4)
    except OSError as exc:
        raise SourceError(f"cannot read source_location: {exc.strerror}") from None
    if head.startswith(_DIRECT_EXEC_MAGIC):
        return (str(program),)
    return (POSIX_SHELL, str(program))
