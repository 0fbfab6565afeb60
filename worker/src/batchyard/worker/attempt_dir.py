"""The fresh directory each attempt runs in, below the worker's state directory.

``<state>/attempts/<run>-<attempt>/`` holds:

* ``work/``    the job's working directory (its cwd), so attempts never share files;
* ``output/``  ``BATCHYARD_OUTPUT_DIR``: files the job leaves here become result assets;
* ``tmp/``     the job's ``TMPDIR`` (removed with the attempt);
* ``source/``  inline source text written as a file (only for INLINE sources);
* ``payload``  ``BATCHYARD_PAYLOAD_PATH``: the run's payload bytes (always present);
* ``job.log``  the attempt's log records (JSON lines) until logs are shipped.

The job's ``HOME`` is the attempt directory itself. The whole directory is removed once the
attempt's outcome and results have been handled.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class AttemptPaths:
    """The paths of one attempt's directory."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def payload(self) -> Path:
        return self.root / "payload"

    @property
    def log(self) -> Path:
        return self.root / "job.log"


def attempt_paths(state_dir: Path, run: str, attempt: int) -> AttemptPaths:
    """Where the directory of ``run``'s ``attempt`` lives (the run id is made path-safe)."""
    safe_run = _UNSAFE.sub("_", run)[:128] or "run"
    return AttemptPaths(state_dir / "attempts" / f"{safe_run}-{attempt}")


def create_attempt_dir(paths: AttemptPaths, payload: bytes) -> None:
    """Creates the attempt's directory afresh (a leftover one is removed first)."""
    if paths.root.exists():
        remove_tree(paths.root)
    paths.root.mkdir(mode=0o700, parents=True)
    for directory in (paths.work, paths.output, paths.tmp):
        directory.mkdir(mode=0o700)
    fd = os.open(paths.payload, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(payload)


def _make_writable_and_retry(function: Callable[..., Any], path: str, _exc: object) -> None:
    """rmtree error handler: a job may leave read-only directories behind."""
    parent = Path(path).parent
    parent.chmod(parent.stat().st_mode | stat.S_IRWXU)
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        target.chmod(target.stat().st_mode | stat.S_IRWXU)
    function(path)


def remove_tree(root: Path) -> None:
    """Removes a directory tree, including read-only parts a job left behind."""
    try:
        shutil.rmtree(root, onerror=_make_writable_and_retry)
    except FileNotFoundError:
        return
    except OSError:
        shutil.rmtree(root, ignore_errors=True)


async def remove_attempt_dir(paths: AttemptPaths) -> None:
    """Removes the attempt's directory without blocking the event loop."""
    await asyncio.to_thread(remove_tree, paths.root)
