"""What one attempt is (:class:`AttemptSpec`) and the worker's settings that shape every
execution (:class:`ExecutionOptions`), composed of the options the modules they belong to
declare, flags included."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchyard.config import Flag, SettingsError, Values, duration, text
from batchyard.v1 import job_pb2
from batchyard.worker.execution import cgroups, sql_targets
from batchyard.worker.execution.cgroups import CgroupTree
from batchyard.worker.execution.directories import SlotDirectories
from batchyard.worker.execution.limits import WorkerLimits
from batchyard.worker.output import collector as output
from batchyard.worker.output.lines import DEFAULT_MAX_LINE_BYTES
from batchyard.worker.results.artifacts import ArtifactStore
from batchyard.worker.results.store import ResultLimits
from batchyard.worker.sources.catalog import WORKSPACE_ROOT, SourceSettings

DEFAULT_TIMEOUT = 60 * 60.0
DEFAULT_KILL_GRACE = 10.0

KILL_GRACE = Flag(
    "kill-grace",
    duration(0, 7 * 24 * 3600.0),
    "how long a stopped job gets from SIGTERM to SIGKILL",
    default=DEFAULT_KILL_GRACE,
)
PYTHON = Flag(
    "python",
    text(metavar="PYTHON"),
    "interpreter for PYTHON jobs, a path or a name on PATH",
    default_text="this one",
)
FLAGS = (KILL_GRACE, PYTHON)


@dataclass(frozen=True)
class AttemptSpec:
    """What the server leased: one attempt of one run."""

    run: str
    attempt: int
    config: job_pb2.JobConfig
    payload: bytes = b""


@dataclass(frozen=True)
class ExecutionOptions:
    """The worker's settings that shape every execution."""

    state_dir: Path
    workspace_root: Path
    """Resolved; WORKSPACE sources must stay below it."""
    python: str
    """Absolute path of the interpreter for PYTHON jobs."""
    job_path: str
    """The PATH jobs get (and SHELL commands are looked up on)."""
    kill_grace: float = DEFAULT_KILL_GRACE
    default_timeout: float = DEFAULT_TIMEOUT
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_output_bytes: int = output.DEFAULT_MAX_OUTPUT_BYTES
    """Per attempt, unless the job's ``resources.output_bytes`` says otherwise."""
    max_output_lines: int = output.DEFAULT_MAX_OUTPUT_LINES
    worker_id: str = ""
    """Named in the attempt's first system entry."""
    drain_timeout: float = 5.0
    """How long to wait for the output pipes to close once the group is dead."""
    directories: SlotDirectories | None = None
    """The attempt directories (the one provider: production and tests alike). None: a
    pool of the options' own below ``state_dir``, made here, shared by every execution
    given these options. Only a pool with job users (``--job-users``) gives each slot a
    user of its own, which then runs its jobs."""
    sources: SourceSettings = field(default_factory=SourceSettings)
    """GIT and S3 sources' transports, bounds and timeouts."""
    artifacts: ArtifactStore | None = None
    """Where result files go; None: they are not collected."""
    result_limits: ResultLimits = field(default_factory=ResultLimits)
    """Per-attempt caps on the result files stored."""
    sql_targets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Connection name (lower case) → DSN, for SQL jobs' ``sql_target.connection``."""
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    """The worker's resource limits (defaults and caps of the jobs' ``resources``)."""
    process_tree: str = cgroups.AUTO
    """``--process-tree``: what the worker asks for (see :mod:`.cgroups`)."""
    cgroups: CgroupTree | None = None
    """Where each attempt's cgroup is made; None: the job's process group holds it
    together (the reaper sweeps its session)."""

    def __post_init__(self) -> None:
        if self.directories is None:
            object.__setattr__(self, "directories", SlotDirectories(self.state_dir))

    @classmethod
    def from_values(
        cls, values: Values, *, state_dir: Path, worker_id: str, env: Mapping[str, str]
    ) -> ExecutionOptions:
        """The options the flags give (``env``: the worker's, for its PATH and the SQL
        targets' variables); no directories or artifact store yet."""
        return cls(
            state_dir=state_dir,
            workspace_root=values[WORKSPACE_ROOT],
            python=_python(values, env),
            job_path=env.get("PATH") or os.defpath,
            kill_grace=values[KILL_GRACE],
            max_line_bytes=values[output.MAX_LINE_BYTES],
            max_output_bytes=values[output.MAX_OUTPUT_BYTES],
            max_output_lines=values[output.MAX_OUTPUT_LINES],
            worker_id=worker_id,
            sources=SourceSettings.from_values(values),
            result_limits=ResultLimits.from_values(values),
            sql_targets=sql_targets.from_values(values, env),
            limits=WorkerLimits.from_values(values),
            process_tree=values[cgroups.PROCESS_TREE],
        )

    @property
    def attempt_directories(self) -> SlotDirectories:
        """The provider of attempt directories (never None once the options are made)."""
        directories = self.directories
        if directories is None:  # pragma: no cover - set in __post_init__
            raise RuntimeError("the options have no attempt directories")
        return directories


def _python(values: Values, env: Mapping[str, str]) -> str:
    """An absolute interpreter path, looked up once (symlinks kept: a venv's python is one)."""
    if not values.given(PYTHON):
        return sys.executable
    raw = values[PYTHON]
    found = shutil.which(raw, path=env.get("PATH") or os.defpath) if "/" not in raw else raw
    if found is None or not os.access(found, os.X_OK):
        raise SettingsError(f"{values.origin(PYTHON)}: {raw!r} is not an executable interpreter")
    return str(Path(found).absolute())
