"""The source port: what the execution asks of a job's source, whatever its kind.

A :class:`Source` is made for one attempt (by
:func:`~batchyard.worker.sources.catalog.open_source`), fetched once into the attempt's
``source/`` directory, and described in one system entry. The execution never asks which
kind it holds: WORKSPACE (a directory below the worker's ``--workspace-root``, used in place
and only read), INLINE (the text written to ``source_location``), GIT (a clone, cached by
commit) and S3 (one object or a prefix) are adapters of this port, each in a module of its
own. PYTHON and SQL jobs need a source; a SHELL job may have none (:class:`NoSource`). A
fetch may be cancelled (a stop request): an adapter that cannot stop at once (git in a
thread) finishes first, then raises ``CancelledError``, so nothing writes into a directory
being emptied.

Paths from a job (the workspace path, ``source_location``) may not be absolute, may not
contain ``..``, and may not lead out of their root through a symlink: they are resolved and
checked against the resolved root, and the resolved path is what gets executed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from batchyard.v1 import job_pb2

DEFAULT_LOCATIONS = {
    job_pb2.JOB_TYPE_PYTHON: "main.py",
    job_pb2.JOB_TYPE_SQL: "query.sql",
    job_pb2.JOB_TYPE_SHELL: "main.sh",
}
SOURCELESS = {job_pb2.JOB_TYPE_SHELL, job_pb2.JOB_TYPE_INGEST}
"""Job types that may have no source (an INGEST job reads S3 itself, and has none)."""


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


def source_location(config: job_pb2.JobConfig) -> str:
    """``source_location``, or the job type's default file name."""
    return config.source_location or DEFAULT_LOCATIONS.get(config.type, "main")


def check_supported(config: job_pb2.JobConfig) -> None:
    """Refuses what this worker cannot run, before any work is done."""
    if config.type not in DEFAULT_LOCATIONS and config.type != job_pb2.JOB_TYPE_INGEST:
        raise SourceError("the job has no valid type")
    if config.source.WhichOneof("kind") is None and config.type not in SOURCELESS:
        raise SourceError(f"a {job_type_name(config)} job needs a source")
    if config.type == job_pb2.JOB_TYPE_INGEST and not config.HasField("ingest"):
        raise SourceError("an ingest job needs its ingest configuration")


def job_type_name(config: job_pb2.JobConfig) -> str:
    """The job type in lower case: python, sql, shell or ingest."""
    return job_pb2.JobType.Name(config.type).removeprefix("JOB_TYPE_").lower()


Note = Callable[[str], None]
"""Takes a warning for the attempt's log (an S3 key skipped, say)."""


class Source(Protocol):
    """A job's source for one attempt."""

    @property
    def writes_files(self) -> bool:
        """Whether fetching writes into the attempt's directory (the files are then handed to
        the job's user); a workspace is used in place."""
        ...

    async def fetch(self, destination: Path, note: Note) -> Path | None:
        """Makes the source ready below ``destination`` (the attempt's ``source/``, which may
        not exist yet) and returns the resolved root programs are found in (None: the job
        has no source); raises SourceError with a message fit for users."""
        ...

    def describe(self) -> str:
        """The system entry saying the source is ready ("" for none); after ``fetch``."""
        ...


class NoSource:
    """A SHELL job's absent source: its ``source_location`` is a command."""

    writes_files = False

    async def fetch(self, destination: Path, note: Note) -> Path | None:
        return None

    def describe(self) -> str:
        return ""


@dataclass(frozen=True)
class StoredObject:
    """One object of an object store: what a job reading objects one by one (an INGEST
    job's runner) needs to know of it before opening it."""

    uri: str
    """``s3://bucket/key``."""
    key: str
    size: int
    etag: str
    """The store's version tag of the content (with ``size``: what "the same file" means)."""


class ObjectStore(Protocol):
    """Objects read one by one, streamed (never downloaded whole): the other face of a
    source, for jobs that read a store themselves instead of having it fetched."""

    def objects(self) -> AsyncIterator[StoredObject]:
        """The objects the source names, in key order (one object, or every object below a
        prefix; "folder" markers left out); raises SourceError."""
        ...

    def read(self, item: StoredObject) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; raises SourceError (also mid-object)."""
        ...
