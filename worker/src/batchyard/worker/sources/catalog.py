"""Which adapter of the source port serves a job: the one place that looks at the kind."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from batchyard.v1 import job_pb2
from batchyard.worker.sources.git import GitSource
from batchyard.worker.sources.git_clone import GitOptions
from batchyard.worker.sources.inline import InlineSource
from batchyard.worker.sources.port import NoSource, Source, SourceError, check_supported
from batchyard.worker.sources.s3 import S3Limits, S3Source
from batchyard.worker.sources.workspace import WorkspaceSource


@dataclass(frozen=True)
class SourceOptions:
    """The worker's settings for every kind of source."""

    workspace_root: Path
    """Resolved; WORKSPACE sources must stay below it."""
    git: GitOptions
    s3: S3Limits = field(default_factory=S3Limits)


def open_source(config: job_pb2.JobConfig, options: SourceOptions, *, time_left: float) -> Source:
    """The job's source (not fetched yet); SourceError for a job this worker cannot run.
    ``time_left``: the attempt's seconds, which bound a GIT fetch too."""
    check_supported(config)  # refusals come before any download
    source = config.source
    match source.WhichOneof("kind"):
        case None:
            return NoSource()
        case "workspace":
            return WorkspaceSource(source.workspace, options.workspace_root)
        case "inline":
            return InlineSource(config)
        case "git":
            git = replace(options.git, timeout=min(options.git.timeout, time_left))
            return GitSource(source.git, git)
        case "s3":
            return S3Source(source.s3, options.s3)
        case other:
            raise SourceError(f"this worker cannot fetch a {other} source")
