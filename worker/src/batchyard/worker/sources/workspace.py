"""WORKSPACE sources: a directory below the worker's ``--workspace-root``, used in place
(only read, never copied)."""

from __future__ import annotations

from pathlib import Path

from batchyard.config import Flag, Kind
from batchyard.v1 import job_pb2
from batchyard.worker.sources.port import Note, SourceError, resolve_inside


class WorkspaceSource:
    """The job's workspace directory; ``root`` (the workspace root) is already resolved."""

    writes_files = False

    def __init__(self, source: job_pb2.WorkspaceSource, root: Path) -> None:
        self._path = source.path
        self._root = root

    async def fetch(self, destination: Path, note: Note) -> Path:
        return workspace_directory(self._root, self._path)

    def describe(self) -> str:
        return f"source ready: workspace path {self._path or '.'!r}"


def workspace_directory(workspace_root: Path, path: str) -> Path:
    """The workspace source's directory; ``workspace_root`` must already be resolved."""
    directory = resolve_inside(workspace_root, path or ".", "workspace path")
    if not directory.is_dir():
        raise SourceError(f"workspace path {path!r} is not a directory")
    return directory


def _directory(raw: str) -> Path:
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"{raw!r} is not a directory")
    return path


WORKSPACE_ROOT = Flag(
    "workspace-root",
    Kind(_directory, str, "DIR"),
    "root of WORKSPACE sources",
    default_from=lambda env: _directory("."),
    default_text=".",
)
