"""Making a job's source ready for an attempt, and keeping every path inside its root.

Supported here: WORKSPACE (a directory below the worker's ``--workspace-root``, used in
place: it is only read) and INLINE (the text written to ``source_location`` in the attempt's
``source/`` directory: an ad-hoc ``batchyard sql "SELECT …"`` arrives as an inline SQL job).
PYTHON and SQL jobs need a source; a SHELL job may have none. S3 sources are downloaded
into ``source/`` by :mod:`~batchyard.worker.s3_source` before ``prepare_source`` runs. GIT
sources are cloned into ``source/`` by :mod:`~batchyard.worker.git_source` (the execution
runs it in a thread, with the worker's git settings).

Paths from a job (the workspace path, ``source_location``) may not be absolute, may not
contain ``..``, and may not lead out of their root through a symlink: they are resolved and
checked against the resolved root, and the resolved path is what gets executed.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from batchyard.v1 import job_pb2
from batchyard.worker.attempt_dir import AttemptPaths

DEFAULT_LOCATIONS = {
    job_pb2.JOB_TYPE_PYTHON: "main.py",
    job_pb2.JOB_TYPE_SQL: "query.sql",
    job_pb2.JOB_TYPE_SHELL: "main.sh",
}


class SourceError(Exception):
    """The job's source or program could not be made ready (SOURCE_UNAVAILABLE).

    The message is shown to users: it names paths relative to their root, never the
    worker's own directories.
    """


def check_relative(path: str, what: str) -> PurePosixPath:
    """Checks that ``path`` is relative and has no ``..`` part."""
    if "\x00" in path:
        raise SourceError(f"{what} contains a NUL character")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise SourceError(f"{what} {path!r} must be a relative path")
    if ".." in pure.parts:
        raise SourceError(f"{what} {path!r} may not contain '..'")
    return pure


def resolve_inside(root: Path, path: str, what: str) -> Path:
    """Resolves ``path`` below the resolved ``root``; it must exist and stay inside."""
    pure = check_relative(path, what)
    try:
        target = (root / pure).resolve(strict=True)
    except FileNotFoundError:
        raise SourceError(f"{what} {path!r} does not exist") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise SourceError(f"{what} {path!r} cannot be resolved: {exc}") from None
    if not target.is_relative_to(root):
        raise SourceError(f"{what} {path!r} leads outside its root")
    return target


def source_kind(config: job_pb2.JobConfig) -> str | None:
    """ "workspace", "git", "s3", "inline", or None when the job has no source."""
    if not config.HasField("source"):
        return None
    return config.source.WhichOneof("kind")


def source_location(config: job_pb2.JobConfig) -> str:
    """``source_location``, or the job type's default file name."""
    return config.source_location or DEFAULT_LOCATIONS.get(config.type, "main")


def check_supported(config: job_pb2.JobConfig) -> None:
    """Refuses what this worker cannot run, before any work is done."""
    if config.type not in DEFAULT_LOCATIONS:
        raise SourceError("the job has no valid type")
    kind = source_kind(config)
    if kind is None and config.type != job_pb2.JOB_TYPE_SHELL:
        raise SourceError(f"a {job_type_name(config)} job needs a source")


def job_type_name(config: job_pb2.JobConfig) -> str:
    """The job type in lower case: python, sql or shell."""
    return job_pb2.JobType.Name(config.type).removeprefix("JOB_TYPE_").lower()


def prepare_source(
    config: job_pb2.JobConfig, paths: AttemptPaths, workspace_root: Path
) -> Path | None:
    """Makes the source ready and returns its (resolved) root; None for no source.

    GIT sources are not handled here: they need the worker's git settings and time.
    """
    check_supported(config)
    kind = source_kind(config)
    if kind == "git":
        raise SourceError("git sources are fetched by the execution, not here")
    if kind == "workspace":
        return workspace_directory(workspace_root, config.source.workspace.path)
    if kind == "inline":
        return write_inline(config, paths)
    if kind == "s3":  # downloaded before, off the event loop: s3_source.fetch_s3
        return paths.source.resolve()
    return None


def workspace_directory(workspace_root: Path, path: str) -> Path:
    """The workspace source's directory; ``workspace_root`` must already be resolved."""
    directory = resolve_inside(workspace_root, path or ".", "workspace path")
    if not directory.is_dir():
        raise SourceError(f"workspace path {path!r} is not a directory")
    return directory


def write_inline(config: job_pb2.JobConfig, paths: AttemptPaths) -> Path:
    """Writes inline source text to ``source_location`` below the attempt's source dir."""
    location = source_location(config)
    pure = check_relative(location, "source_location")
    if not pure.parts:
        raise SourceError(f"source_location {location!r} names no file")
    root = paths.source
    target = root.joinpath(*pure.parts)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.write_text(config.source.inline.text, encoding="utf-8")
    target.chmod(0o700 if config.type == job_pb2.JOB_TYPE_SHELL else 0o600)
    return root.resolve()
