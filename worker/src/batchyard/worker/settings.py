"""The worker's settings: one frozen object built from flags and ``BATCHYARD_*`` variables.

Every flag is declared once (:class:`batchyard.config.Flag`), next to the options of the
module it configures: the server connection in :mod:`~batchyard.worker.server_api`, slots
and grace in :mod:`~batchyard.worker.leasing.runner`, output caps in
:mod:`~batchyard.worker.output.collector`, and so on. This module only lists those groups
and composes their options; a flag wins over its variable, which wins over the default.
Built once in the command's handler and passed down; nothing reads the environment later.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchyard.client.connection import ClientTls
from batchyard.config import Flag, Kind, SettingsError, add_flags, resolve
from batchyard.worker import process_log, server_api
from batchyard.worker.execution import cgroups, job_users, limits, options, sql_targets
from batchyard.worker.execution.job_users import JobUsers, job_users_from_values
from batchyard.worker.execution.options import ExecutionOptions
from batchyard.worker.leasing import runner
from batchyard.worker.leasing.runner import RunnerOptions
from batchyard.worker.output import collector as output
from batchyard.worker.results import location, store
from batchyard.worker.results.artifacts import ArtifactStore
from batchyard.worker.results.location import ArtifactSettings
from batchyard.worker.server_api import ServerConnection
from batchyard.worker.shipping import options as shipping
from batchyard.worker.shipping.options import ShippingOptions
from batchyard.worker.sources import catalog as sources

__all__ = ["SettingsError", "WorkerSettings", "add_arguments", "settings_from_args"]


def _state_dir(raw: str) -> Path:
    if "\n" in raw or "\x00" in raw:
        raise ValueError("may not contain a line break or NUL")
    return Path(raw).expanduser().absolute()


def _default_state_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "batchyard" / "worker"


def _worker_id(raw: str) -> str:
    worker_id = raw.strip()
    if not 1 <= len(worker_id) <= 200 or not all("!" <= c <= "~" for c in worker_id):
        raise ValueError("must be 1 to 200 printable ASCII characters without spaces")
    return worker_id


STATE_DIR = Flag(
    "state-dir",
    Kind(_state_dir, str, "DIR"),
    "attempt directories, the Git cache and log spill files go here",
    default_from=_default_state_dir,
    default_text="${XDG_STATE_HOME:-~/.local/state}/batchyard/worker",
)
WORKER_ID = Flag(
    "worker-id",
    Kind(_worker_id, str, "ID"),
    "this worker's id",
    default_from=lambda env: f"{socket.gethostname()}-{os.getpid()}",
    default_text="<hostname>-<pid>",
)

GROUPS: Sequence[tuple[str, Sequence[Flag[Any]]]] = (
    ("server", server_api.FLAGS),
    ("slots and shutdown", (*runner.FLAGS, WORKER_ID, STATE_DIR, options.KILL_GRACE)),
    ("programs and sources", (options.PYTHON, *sources.FLAGS)),
    ("job output", output.FLAGS),
    ("log shipping", shipping.FLAGS),
    ("results", (*location.FLAGS, *store.FLAGS)),
    ("limits and isolation", (*limits.FLAGS, job_users.JOB_USERS)),
    ("SQL jobs", (sql_targets.SQL_TARGET,)),
    ("process log", process_log.FLAGS),
    ("process tree", (cgroups.PROCESS_TREE,)),
)
"""Every flag of the worker, in the groups ``--help`` shows."""
FLAGS: tuple[Flag[Any], ...] = tuple(flag for _, group in GROUPS for flag in group)


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker process is configured with: each part is the options of the
    module it configures."""

    worker_id: str
    state_dir: Path
    connection: ServerConnection
    runner: RunnerOptions
    execution: ExecutionOptions
    """Every attempt's options (no attempt directories or artifact store yet: see app)."""
    shipping: ShippingOptions
    artifacts: ArtifactSettings
    job_users: JobUsers | None = None
    """The uids the slots' jobs run as; None: the worker's own."""
    log_format: str = "auto"
    log_level: str = "info"

    @property
    def tls(self) -> ClientTls | None:
        """The TLS to the server (None: plaintext)."""
        return self.connection.tls

    def artifact_store(self) -> ArtifactStore:
        """The artifact store (no connection made until the first result is stored); the S3
        sources' timeouts and attempts serve it too."""
        s3 = self.execution.sources.s3
        return self.artifacts.open(
            connect_timeout=s3.connect_timeout,
            read_timeout=s3.read_timeout,
            max_attempts=s3.max_attempts,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the worker's flags, in groups (values are parsed later, with the environment)."""
    for title, flags in GROUPS:
        add_flags(parser.add_argument_group(title), flags)


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, *, euid: int | None = None
) -> WorkerSettings:
    """Builds the settings from parsed flags and the environment; raises SettingsError.
    ``euid``: the worker's effective uid (default: this process's)."""
    env = os.environ if environ is None else environ
    values = resolve(FLAGS, args, env)
    state_dir, worker_id = values[STATE_DIR], values[WORKER_ID]
    runner_options = RunnerOptions.from_values(values)
    return WorkerSettings(
        worker_id=worker_id,
        state_dir=state_dir,
        connection=ServerConnection.from_values(values),
        runner=runner_options,
        execution=ExecutionOptions.from_values(
            values, state_dir=state_dir, worker_id=worker_id, env=env
        ),
        shipping=ShippingOptions.from_values(values, state_dir=state_dir),
        artifacts=ArtifactSettings.from_values(values),
        job_users=job_users_from_values(
            values, slots=runner_options.slots, euid=os.geteuid() if euid is None else euid
        ),
        log_format=values[process_log.LOG_FORMAT],
        log_level=values[process_log.LOG_LEVEL],
    )
