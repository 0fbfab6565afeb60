"""INLINE sources: the text written to ``source_location`` in the attempt's ``source/``
directory (an ad-hoc ``batchyard sql "SELECT …"`` arrives as an inline SQL job)."""

from __future__ import annotations

from pathlib import Path

from batchyard.v1 import job_pb2
from batchyard.worker.sources.port import Note, SourceError, check_relative, source_location


class InlineSource:
    """The job's inline text, written as its program file."""

    writes_files = True

    def __init__(self, config: job_pb2.JobConfig) -> None:
        self._config = config

    async def fetch(self, destination: Path, note: Note) -> Path:
        return write_inline(self._config, destination)

    def describe(self) -> str:
        return f"source ready: inline text written to {source_location(self._config)!r}"


def write_inline(config: job_pb2.JobConfig, destination: Path) -> Path:
    """Writes inline source text to ``source_location`` below ``destination``."""
    location = source_location(config)
    pure = check_relative(location, "source_location")
    if not pure.parts:
        raise SourceError(f"source_location {location!r} names no file")
    target = destination.joinpath(*pure.parts)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.write_text(config.source.inline.text, encoding="utf-8")
    target.chmod(0o700 if config.type == job_pb2.JOB_TYPE_SHELL else 0o600)
    return destination.resolve()
