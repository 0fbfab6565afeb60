"""Attempt directories reused per slot: emptied after each attempt, not made and removed.

On the test machines' disk a ``mkdir`` costs ~250 us and a file ~900 us of kernel time, more
than a trivial job itself; a worker running hundreds of short attempts a second spent most
of its CPU there. So each slot keeps ``<state>/slots/<n>/`` (with its ``output/``), and an
attempt gets one that is empty and used by no other attempt. After the attempt it is
checked with two directory reads; only what the job left behind is removed. Every attempt
still starts in an empty directory of its own, as with a fresh one.

A directory whose state cannot be restored (a job made it unreadable, say) is removed and
never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path

from batchyard.worker.attempt_dir import EMPTY_PAYLOAD, AttemptPaths, remove_tree

_MODE = 0o700


class SlotDirectories:
    """The worker's pool of attempt directories (one per slot, made on first use)."""

    def __init__(self, state_dir: Path) -> None:
        self._root = state_dir / "slots"
        self._free: list[Path] = []
        self._made = 0
        self._started: asyncio.Task[None] | None = None

    async def acquire(self, payload: bytes) -> AttemptPaths:
        """An empty attempt directory, with the payload written when there is one."""
        if self._started is None:  # once, however many attempts arrive together
            self._started = asyncio.create_task(asyncio.to_thread(self._start))
        await asyncio.shield(self._started)
        if self._free:
            root = self._free.pop()
        else:
            self._made += 1
            root = self._root / str(self._made)
            await asyncio.to_thread(_make, root)
        paths = AttemptPaths(root, has_payload=bool(payload))
        if payload:
            await asyncio.to_thread(_write_new, paths.payload, payload, 0o600)
        return paths

    async def release(self, paths: AttemptPaths) -> None:
        """Empty the directory for its next attempt (or drop it if it cannot be)."""
        try:
            if paths.has_payload:
                paths.payload.unlink(missing_ok=True)
            if not _pristine(paths.root):
                await asyncio.to_thread(_remake, paths.root)
        except OSError:
            await asyncio.to_thread(remove_tree, paths.root)
            return
        self._free.append(paths.root)

    def _start(self) -> None:
        """Leftovers of an earlier worker on this state directory go first."""
        remove_tree(self._root)
        self._root.mkdir(mode=_MODE, parents=True, exist_ok=True)
        _write_new(self._root / EMPTY_PAYLOAD, b"", 0o444)


def _make(root: Path) -> None:
    root.mkdir(_MODE)
    (root / "output").mkdir(_MODE)


def _remake(root: Path) -> None:
    remove_tree(root)
    _make(root)


def _pristine(root: Path) -> bool:
    """Whether the directory holds exactly an empty ``output/``, both as made."""
    with os.scandir(root) as entries:
        found = list(entries)
    if len(found) != 1 or found[0].name != "output":
        return False
    output = found[0]
    if not output.is_dir(follow_symlinks=False):
        return False
    if stat.S_IMODE(output.stat(follow_symlinks=False).st_mode) != _MODE:
        return False
    if stat.S_IMODE(root.stat().st_mode) != _MODE:
        return False
    with os.scandir(output.path) as inside:
        return next(inside, None) is None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
