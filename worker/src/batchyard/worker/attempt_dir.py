"""The fresh directory each attempt runs in, below the worker's state directory.

``<state>/attempts/<run>-<attempt>/`` holds:

* (itself)    the job's working directory (cwd), ``HOME`` and ``TMPDIR``;
* ``output/``  ``BATCHYARD_OUTPUT_DIR``: files the job leaves here become result assets;
* ``source/``  inline source text written as a file, or the clone of a GIT source;
* ``payload``  ``BATCHYARD_PAYLOAD_PATH``: the run's payload bytes, when it has any;

A run without a payload
gets ``<state>/attempts/.empty-payload`` (one shared, read-only, empty file). The whole
directory is removed once the attempt's outcome and results have been handled.

File-system metadata is the price of an attempt (on the shared test machines a ``mkdir``
costs ~250 us and a file ~900 us), so an attempt creates only what its job needs: two
directories for a trivial run, made off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


EMPTY_PAYLOAD = ".empty-payload"


@dataclass(frozen=True)
class AttemptPaths:
    """The paths of one attempt's directory."""

    root: Path
    has_payload: bool = True
    uid: int | None = None
    """The slot's job uid, which owns the directory and runs the job (``--job-users``);
    None: the worker's own user."""

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def payload(self) -> Path:
        if self.has_payload:
            return self.root / "payload"
        return self.root.parent / EMPTY_PAYLOAD


def attempt_paths(
    state_dir: Path, run: str, attempt: int, *, has_payload: bool = True
) -> AttemptPaths:
    """Where the directory of ``run``'s ``attempt`` lives (the run id is made path-safe)."""
    safe_run = _UNSAFE.sub("_", run)[:128] or "run"
    return AttemptPaths(state_dir / "attempts" / f"{safe_run}-{attempt}", has_payload)


def create_attempt_dir(paths: AttemptPaths, payload: bytes) -> None:
    """Creates the attempt's directory afresh (a leftover one is removed first)."""
    try:
        paths.root.mkdir(0o700)
    except FileExistsError:
        remove_tree(paths.root)
        paths.root.mkdir(0o700)
    except FileNotFoundError:
        paths.root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.root.mkdir(0o700)
    paths.output.mkdir(0o700)
    if payload:
        _write_new(paths.payload, payload, 0o600)
    else:
        with contextlib.suppress(FileExistsError):  # made by an earlier attempt
            _write_new(paths.payload, b"", 0o444)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


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
