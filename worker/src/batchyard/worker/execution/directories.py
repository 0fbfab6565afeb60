"""The one provider of attempt directories, for production and tests alike.

Each slot keeps ``<state>/slots/<n>/``, and an attempt gets one that is empty and used by no
other attempt; it holds:

* (itself)    the job's working directory (cwd), ``HOME`` and ``TMPDIR``;
* ``output/``  ``BATCHYARD_OUTPUT_DIR``: files the job leaves here become result assets;
* ``source/``  inline source text written as a file, a GIT clone or an S3 download;
* ``payload``  ``BATCHYARD_PAYLOAD_PATH``: the run's payload bytes, when it has any
  (a run without one gets ``<state>/slots/.empty-payload``, shared, read-only, empty).

Directories are reused, emptied after each attempt, not made and removed: on the test
machines' disk a ``mkdir`` costs ~250 us and a file ~900 us of kernel time, more than a
trivial job itself; a worker running hundreds of short attempts a second spent most of its
CPU there. After the attempt a directory is checked with two directory reads; only what the
job left behind is removed. Every attempt still starts in an empty directory of its own.

A directory whose state cannot be restored (a job made it unreadable, say) is removed and
never reused.

With job users (``--job-users``, :mod:`~batchyard.worker.execution.job_users`) each directory has a
uid of its own, one of the range, which owns it (and its ``output/`` and payload) and runs
its jobs; a directory dropped gives its uid to the one made next. ``slots/`` is then 0711,
so a job's uid reaches its own directory (and the shared empty payload) but lists nothing.
Before a directory is checked and emptied, every process of its uid is killed; a starting
worker kills those of all the uids."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from batchyard.worker.execution.job_users import JobUsers, kill_processes_of
from batchyard.worker.trees import remove_tree

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


_MODE = 0o700
_SHARED_MODE = 0o711
"""``slots/`` with job users: each uid passes through to its own directory."""


class SlotDirectories:
    """The worker's pool of attempt directories (one per slot, made on first use)."""

    def __init__(self, state_dir: Path, users: JobUsers | None = None) -> None:
        self._root = state_dir / "slots"
        self._users = users
        self._free: list[tuple[Path, int | None]] = []
        self._made = 0
        self._spare_uids: list[int] = [] if users is None else list(reversed(users.uids))
        self._started: asyncio.Task[None] | None = None

    @property
    def users(self) -> JobUsers | None:
        """The uids the slots' jobs run as (None: the worker's own)."""
        return self._users

    async def acquire(self, payload: bytes) -> AttemptPaths:
        """An empty attempt directory, with the payload written when there is one."""
        if self._started is None:  # once, however many attempts arrive together
            self._started = asyncio.create_task(asyncio.to_thread(self._start))
        await asyncio.shield(self._started)
        reused = bool(self._free)
        if reused:
            root, uid = self._free.pop()
        else:
            self._made += 1
            root = self._root / str(self._made)
            uid = self._spare_uid()
        paths = AttemptPaths(root, has_payload=bool(payload), uid=uid)
        try:
            if not reused:
                await asyncio.to_thread(_make, root, uid)
            if payload:
                await asyncio.to_thread(_write_new, paths.payload, payload, 0o600, uid)
        except BaseException:  # no job ran: the uid may serve the next directory
            remove_tree(root)
            if uid is not None:
                self._spare_uids.append(uid)
            raise
        return paths

    async def release(self, paths: AttemptPaths) -> None:
        """Empty the directory for its next attempt (or drop it if it cannot be)."""
        uid = paths.uid
        if uid is not None:  # nothing of the job may change the directory from here on
            try:
                await asyncio.to_thread(kill_processes_of, uid)
            except OSError:  # its processes may live on: the uid is not used again
                await asyncio.to_thread(remove_tree, paths.root)
                return
        try:
            if paths.has_payload:
                paths.payload.unlink(missing_ok=True)
            if not _pristine(paths.root):
                await asyncio.to_thread(_remake, paths.root, uid)
        except OSError:
            await asyncio.to_thread(remove_tree, paths.root)
            if uid is not None:
                self._spare_uids.append(uid)
            return
        self._free.append((paths.root, uid))

    def _spare_uid(self) -> int | None:
        if self._users is None:
            return None
        if not self._spare_uids:  # the runner never runs more attempts than slots
            raise RuntimeError(f"all job users ({self._users.describe()}) are busy")
        return self._spare_uids.pop()

    def _start(self) -> None:
        """Leftovers of an earlier worker on this state directory go first."""
        mode = _MODE
        if self._users is not None:
            mode = _SHARED_MODE
            for uid in self._users.uids:
                kill_processes_of(uid)
        remove_tree(self._root)
        self._root.mkdir(mode=mode, parents=True, exist_ok=True)
        if self._users is not None:
            self._root.chmod(mode)  # whatever the umask
        _write_new(self._root / EMPTY_PAYLOAD, b"", 0o444)


def _make(root: Path, uid: int | None) -> None:
    root.mkdir(_MODE)
    (root / "output").mkdir(_MODE)
    if uid is not None:
        os.chown(root / "output", uid, uid)
        os.chown(root, uid, uid)


def _remake(root: Path, uid: int | None) -> None:
    remove_tree(root)
    _make(root, uid)


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


def _write_new(path: Path, data: bytes, mode: int, uid: int | None = None) -> None:
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as file:
            if uid is not None:
                os.fchown(fd, uid, uid)
            file.write(data)
