"""Which adapter of the source port serves a job — the one place that looks at the kind —
and the worker's settings for every kind of source (their flags are the adapters' own)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from batchyard.config import Values
from batchyard.v1 import job_pb2
from batchyard.worker.sources import git, s3
from batchyard.worker.sources.git import GitSource
from batchyard.worker.sources.git_clone import DEFAULT_GIT_TIMEOUT, DEFAULT_PROTOCOLS, GitOptions
from batchyard.worker.sources.inline import InlineSource
from batchyard.worker.sources.port import NoSource, Source, SourceError, check_supported
from batchyard.worker.sources.s3 import S3Limits, S3Source
from batchyard.worker.sources.workspace import WORKSPACE_ROOT, WorkspaceSource

__all__ = ["FLAGS", "WORKSPACE_ROOT", "SourceSettings", "open_source"]

FLAGS = (WORKSPACE_ROOT, *git.FLAGS, *s3.FLAGS)


@dataclass(frozen=True)
class SourceSettings:
    """The worker's settings for GIT and S3 sources (the workspace root is the
    execution's: jobs' programs are found below it)."""

    git_protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    """The transports GIT sources may use."""
    git_timeout: float = DEFAULT_GIT_TIMEOUT
    """Seconds a GIT source's fetch may take (at most the attempt's timeout)."""
    s3: S3Limits = field(default_factory=S3Limits)
    """Bounds and timeouts of S3 source downloads."""

    @classmethod
    def from_values(cls, values: Values) -> SourceSettings:
        return cls(
            git_protocols=values[git.GIT_PROTOCOLS],
            git_timeout=values[git.GIT_TIMEOUT],
            s3=S3Limits.from_values(values),
        )


def open_source(
    config: job_pb2.JobConfig,
    settings: SourceSettings,
    *,
    workspace_root: Path,
    state_dir: Path,
    time_left: float,
) -> Source:
    """The job's source (not fetched yet); SourceError for a job this worker cannot run.
    ``workspace_root`` is resolved; ``state_dir`` holds the Git cache; ``time_left``, the
    attempt's seconds, bounds a GIT fetch too."""
    check_supported(config)  # refusals come before any download
    source = config.source
    match source.WhichOneof("kind"):
        case None:
            return NoSource()
        case "workspace":
            return WorkspaceSource(source.workspace, workspace_root)
        case "inline":
            return InlineSource(config)
        case "git":
            timeout = min(settings.git_timeout, time_left)
            options = GitOptions(state_dir, protocols=settings.git_protocols, timeout=timeout)
            return GitSource(source.git, options)
        case "s3":
            return S3Source(source.s3, settings.s3)
        case other:
            raise SourceError(f"this worker cannot fetch a {other} source")
