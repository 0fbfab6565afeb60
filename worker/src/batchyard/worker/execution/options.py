"""What one attempt is (:class:`AttemptSpec`) and the worker's settings that shape every
execution (:class:`ExecutionOptions`), composed of the options the modules below own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchyard.v1 import job_pb2
from batchyard.worker.execution.directories import SlotDirectories
from batchyard.worker.execution.limits import WorkerLimits
from batchyard.worker.output.collector import DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_OUTPUT_LINES
from batchyard.worker.output.lines import DEFAULT_MAX_LINE_BYTES
from batchyard.worker.results.artifacts import ArtifactStore
from batchyard.worker.results.store import ResultLimits
from batchyard.worker.sources.catalog import SourceOptions
from batchyard.worker.sources.git_clone import DEFAULT_GIT_TIMEOUT, DEFAULT_PROTOCOLS, GitOptions
from batchyard.worker.sources.s3 import S3Limits

DEFAULT_TIMEOUT = 60 * 60.0
DEFAULT_KILL_GRACE = 10.0


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
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    """Per attempt, unless the job's ``resources.output_bytes`` says otherwise."""
    max_output_lines: int = DEFAULT_MAX_OUTPUT_LINES
    worker_id: str = ""
    """Named in the attempt's first system entry."""
    drain_timeout: float = 5.0
    """How long to wait for the output pipes to close once the group is dead."""
    directories: SlotDirectories | None = None
    """The attempt directories (the one provider: production and tests alike). None: a
    pool of the options' own below ``state_dir``, made here, shared by every execution
    given these options. Only a pool with job users (``--job-users``) gives each slot a
    user of its own, which then runs its jobs."""
    git_protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    """The transports GIT sources may use."""
    git_timeout: float = DEFAULT_GIT_TIMEOUT
    """Seconds a GIT source's fetch may take (at most the attempt's timeout)."""
    s3_limits: S3Limits = field(default_factory=S3Limits)
    """Bounds and timeouts of S3 source downloads."""
    artifacts: ArtifactStore | None = None
    """Where result files go; None: they are not collected."""
    result_limits: ResultLimits = field(default_factory=ResultLimits)
    """Per-attempt caps on the result files stored."""
    sql_targets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Connection name (lower case) → DSN, for SQL jobs' ``sql_target.connection``."""
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    """The worker's resource limits (defaults and caps of the jobs' ``resources``)."""

    def __post_init__(self) -> None:
        if self.directories is None:
            object.__setattr__(self, "directories", SlotDirectories(self.state_dir))

    @property
    def attempt_directories(self) -> SlotDirectories:
        """The provider of attempt directories (never None once the options are made)."""
        directories = self.directories
        if directories is None:  # pragma: no cover - set in __post_init__
            raise RuntimeError("the options have no attempt directories")
        return directories

    @property
    def sources(self) -> SourceOptions:
        """What the source adapters need of these options."""
        git = GitOptions(self.state_dir, protocols=self.git_protocols, timeout=self.git_timeout)
        return SourceOptions(workspace_root=self.workspace_root, git=git, s3=self.s3_limits)
