"""Each attempt in a cgroup v2 of its own, ended with ``cgroup.kill``.

A process group (or session) is only a convention: a job's ``setsid`` grandchild, a double
fork or a daemon leaves it, and nothing the worker signals reaches them. A cgroup is not a
convention: every process forked inside stays inside, and writing ``1`` to its
``cgroup.kill`` SIGKILLs all of them at once, forks racing the kill included (Linux ≥ 5.14).

Where (:func:`detect`): the worker's own cgroup in the cgroup2 hierarchy — ``/sys/fs/cgroup``
on a pure v2 host (a delegated subtree under systemd, ``Delegate=yes``), the empty cgroup2
at ``/sys/fs/cgroup/unified`` on a hybrid host — gets a child ``batchyard-<key>`` per worker
(``key``: a hash of the worker's state directory, so a restarted worker finds what its
predecessor left), and that one a child per attempt. Detection makes the directory, checks
``cgroup.kill`` is there, and starts one probe process through the trampoline below: a host
that does not let the worker write there (no cgroup2, read-only, no delegation, a kernel
without ``cgroup.kill``) falls back to the process-group reaper, and the worker says which
one is in use when it starts. ``--process-tree`` forces either.

How a job gets in before it executes, without ``preexec_fn`` (unsafe in a process with
threads, and grpc has threads): the command runs through a two-line ``/bin/sh`` trampoline
that writes its own pid (``$$``) into the attempt's ``cgroup.procs`` and then executes the
job in place (same pid, same process group), so every process the job ever forks is born
inside. It costs about one millisecond per start (measured: 0.9 → 1.9 ms for ``/bin/true``).
A trampoline that cannot join the cgroup exits with :data:`JOIN_FAILED` before the job runs.

Accounting: ``cpu.stat``'s ``usage_usec`` (present without any controller) is the CPU time of
every process that ran in the cgroup; ``memory.peak`` is read where the memory controller is
enabled for the subtree (a pure v2 host whose parent delegates it), else the attempt falls
back to the rusage of the leader's process tree (:mod:`~batchyard.worker.execution.process`).

Clean-up: the attempt's directory is removed once its processes are gone (a zombie does not
keep a cgroup busy), the worker's own at shutdown; the reaper sidecar kills and removes
what a dead worker left (its directory included); the next start of the worker (same
state directory) sweeps whatever both missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from batchyard.config import Flag, choice
from batchyard.worker.outcome import Usage

AUTO, CGROUP, PROCESS_GROUP = "auto", "cgroup", "process-group"
PROCESS_TREE = Flag(
    "process-tree",
    choice(AUTO, CGROUP, PROCESS_GROUP),
    "how a job's processes are kept together and killed: cgroup (a cgroup v2 per attempt, "
    "ended with cgroup.kill: catches setsid, double forks and daemons), process-group (its "
    "session and process group, swept by the reaper), or auto: cgroup where the host "
    "allows it",
    default=AUTO,
)
JOIN_FAILED = 125
"""The trampoline's exit status when it could not join the attempt's cgroup."""
_TRAMPOLINE = 'echo $$ >"$0" || exit 125; exec "$@"'
_SHELL = "/bin/sh"
_REMOVE_WITHIN = 2.0


class CgroupError(OSError):
    """The host does not let the worker use cgroups the way it needs."""


@dataclass(frozen=True)
class AttemptCgroup:
    """One attempt's cgroup directory."""

    path: Path

    def wrap(self, argv: tuple[str, ...]) -> tuple[str, ...]:
        """``argv`` run through the trampoline that joins this cgroup first."""
        return (_SHELL, "-c", _TRAMPOLINE, str(self.path / "cgroup.procs"), *argv)

    def kill(self) -> bool:
        """SIGKILLs every process in the cgroup; False if it is gone already."""
        try:
            (self.path / "cgroup.kill").write_bytes(b"1")
        except FileNotFoundError:
            return False
        return True

    def populated(self) -> bool:
        try:
            events = (self.path / "cgroup.events").read_text()
        except FileNotFoundError:
            return False
        return "populated 1" in events

    def usage(self) -> Usage:
        """The CPU time and peak memory of every process that ran in it (None: unknown)."""
        cpu: float | None = None
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    cpu = int(value) / 1e6
        peak: int | None = None
        with contextlib.suppress(OSError, ValueError):
            peak = int((self.path / "memory.peak").read_text())
        return Usage(peak_memory_bytes=peak, cpu_seconds=cpu)

    def remove(self) -> bool:
        """Removes the directory (its processes must be gone): False if it is still busy."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


class CgroupTree:
    """The worker's directory of attempt cgroups."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._names = itertools.count(1)

    def create(self) -> AttemptCgroup:
        """A new, empty cgroup for one attempt; OSError if it cannot be made."""
        while True:
            path = self.root / f"{os.getpid()}-{next(self._names)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return AttemptCgroup(path)

    def close(self) -> None:
        """Removes what is left and the worker's directory itself (at shutdown)."""
        self.sweep()
        with contextlib.suppress(OSError):
            self.root.rmdir()

    def sweep(self) -> int:
        """Kills and removes the attempt cgroups a previous worker left: how many."""
        swept = 0
        try:
            children = list(self.root.iterdir())
        except FileNotFoundError:
            return 0
        for child in children:
            if child.is_dir():
                swept += 1
                kill_and_remove(AttemptCgroup(child))
        return swept


async def remove_when_empty(cgroup: AttemptCgroup, within: float = _REMOVE_WITHIN) -> bool:
    """Kills what is left in ``cgroup`` and removes it once its processes have exited,
    without blocking the loop; False if it is still busy after ``within`` seconds."""
    deadline = time.monotonic() + within
    cgroup.kill()
    delay = 0.001
    while not cgroup.remove():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


def kill_and_remove(cgroup: AttemptCgroup, within: float = _REMOVE_WITHIN) -> bool:
    """Blocking: kills everything in ``cgroup`` and removes it (retrying while the killed
    processes exit, up to ``within`` seconds); False if it is still there."""
    deadline = time.monotonic() + within
    cgroup.kill()
    while not cgroup.remove():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def cgroup2_mount(mountinfo: str) -> Path | None:
    """The first cgroup2 mount point in ``/proc/self/mountinfo``'s text."""
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split(" ")[4])
    return None


def own_cgroup(proc_cgroup: str) -> str | None:
    """This process's cgroup2 path ("0::/path" in ``/proc/self/cgroup``)."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def detect(state_dir: Path) -> CgroupTree:
    """The worker's cgroup directory, made and probed; CgroupError says why not."""
    try:
        mount = cgroup2_mount(Path("/proc/self/mountinfo").read_text())
        own = own_cgroup(Path("/proc/self/cgroup").read_text())
    except OSError as exc:
        raise CgroupError(f"cannot read this process's cgroups: {exc.strerror}") from None
    if mount is None or own is None:
        raise CgroupError("no cgroup v2 hierarchy is mounted")
    key = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    root = mount / own.lstrip("/") / f"batchyard-{key}"
    try:
        root.mkdir(exist_ok=True)
    except OSError as exc:
        raise CgroupError(f"cannot make {root}: {exc.strerror}") from None
    tree = CgroupTree(root)
    if not (root / "cgroup.kill").exists():
        raise CgroupError("the kernel has no cgroup.kill (Linux 5.14 or later needed)")
    _enable_controllers(root)
    _probe(tree)
    return tree


def _enable_controllers(root: Path) -> None:
    """Enables memory (for ``memory.peak``) in the attempts' cgroups where it is offered."""
    with contextlib.suppress(OSError):
        offered = (root / "cgroup.controllers").read_text().split()
        if "memory" in offered:
            (root / "cgroup.subtree_control").write_text("+memory")


def _probe(tree: CgroupTree) -> None:
    """Starts ``true`` through the trampoline: the one proof the host lets jobs join."""
    try:
        cgroup = tree.create()
    except OSError as exc:
        raise CgroupError(f"cannot make a cgroup in {tree.root}: {exc.strerror}") from None
    try:
        done = subprocess.run(
            cgroup.wrap(("/bin/true",)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CgroupError(f"cannot start the cgroup trampoline: {exc}") from None
    finally:
        kill_and_remove(cgroup)
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        raise CgroupError(
            f"a process cannot join a cgroup in {tree.root}: {error[-1] if error else done}"
        )


def choose(mode: str, state_dir: Path) -> tuple[CgroupTree | None, str]:
    """The tree to use for ``mode`` (None: process groups) and a sentence saying which;
    CgroupError when ``mode`` is ``cgroup`` and the host does not allow it."""
    if mode == PROCESS_GROUP:
        return None, "process groups (--process-tree=process-group)"
    try:
        tree = detect(state_dir)
    except CgroupError as exc:
        if mode == CGROUP:
            raise
        return None, f"process groups (no cgroup: {exc})"
    swept = tree.sweep()
    left = f"; removed {swept} left by a previous worker" if swept else ""
    return tree, f"a cgroup v2 per attempt under {tree.root}{left}"
