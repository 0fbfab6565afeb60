"""The reaper: a sidecar process that kills a dead worker's jobs.

Jobs run in their own sessions, so they would outlive a worker that is killed with
``kill -9`` (or crashes, or is OOM-killed). The worker starts this program once, with a pipe
on its stdin, and tells it about every job process group and attempt directory:

    group <pgid>     a job's process group (and session) was started
    ungroup <pgid>   that job ended; the worker already killed its group
    cgroot <path>    the worker's cgroup v2 directory, whose children are its attempts'
    cgroup <path>    an attempt's cgroup v2 directory was made (the job runs inside)
    uncgroup <path>  that cgroup was emptied and removed
    dir <path>       an attempt directory was created
    undir <path>     that directory was removed

When its stdin reaches EOF — the worker exited, however it died: the kernel closes the
worker's end of the pipe — the reaper kills every registered cgroup (``cgroup.kill``: every
process inside, ``setsid`` escapees and daemons included) and removes it, SIGKILLs every
registered process group and every process still in one of those sessions (found in /proc,
which catches processes that moved to another process group), removes the registered
directories, and exits.

It reads in batches (a pause of ``READ_PAUSE`` after each read), so a busy worker does not
wake it for every message; EOF is still noticed within that pause.

After ``ungroup`` it also sweeps the ended session for members that left the job's process
group, coalesced into at most one /proc scan per ``SWEEP_DELAY`` seconds, so the worker never
pays for a scan per job. A process that calls ``setsid()`` itself leaves the session and
escapes; only a cgroup catches that — which is why the worker runs each attempt in one
where the host allows it (:mod:`batchyard.worker.execution.cgroups`), and then registers the
cgroup instead of the group.

It ignores SIGINT, SIGTERM and SIGHUP (a Ctrl-C or a closed terminal aimed at the worker's
process group must not take away the safety net): it ends only at EOF. Standard library only,
no asyncio: it starts once per worker and then sleeps in ``select``.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time

SWEEP_DELAY = 0.5
READ_PAUSE = 0.02
_FINAL_ROUNDS = 20


def session_members(sessions: set[int]) -> list[int]:
    """The live (non-zombie) processes whose session id is in ``sessions``."""
    found: list[int] = []
    if not sessions:
        return found
    me = os.getpid()
    try:
        entries = [entry.name for entry in os.scandir("/proc")]
    except OSError:
        return found
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:  # noqa: PTH123 (hot loop)
                stat = file.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid pgrp session ..."; comm may contain spaces and ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 4 or fields[0] == b"Z":
            continue
        pid = int(name)
        if pid != me and int(fields[3]) in sessions:
            found.append(pid)
    return found


def _kill(pid: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_cgroup(path: str) -> None:
    try:
        with open(f"{path}/cgroup.kill", "wb") as file:  # noqa: PTH123 (stdlib only, no pathlib)
            file.write(b"1")
    except OSError:
        pass  # gone already


def _remove_cgroup(path: str) -> None:
    """Removes a killed cgroup once its processes have exited (up to ~2 s)."""
    for _ in range(_FINAL_ROUNDS * 5):
        try:
            os.rmdir(path)  # noqa: PTH106
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
            continue
        return


class Registry:
    """What the worker told the reaper, and the sweeps that are due."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.dirs: set[str] = set()
        self.cgroups: set[str] = set()
        self.cgroup_root: str | None = None
        self.ended: set[int] = set()
        self.sweep_at: float | None = None

    def handle(self, line: str) -> None:
        command, _, argument = line.partition(" ")
        if command == "group":
            self.groups.add(int(argument))
        elif command == "ungroup":
            pgid = int(argument)
            self.groups.discard(pgid)
            self.ended.add(pgid)
            if self.sweep_at is None:
                self.sweep_at = time.monotonic() + SWEEP_DELAY
        elif command == "cgroot":
            self.cgroup_root = argument
        elif command == "cgroup":
            self.cgroups.add(argument)
        elif command == "uncgroup":
            self.cgroups.discard(argument)
        elif command == "dir":
            self.dirs.add(argument)
        elif command == "undir":
            self.dirs.discard(argument)
        else:
            raise ValueError(f"unknown command {command!r}")

    def sweep_timeout(self) -> float | None:
        if self.sweep_at is None:
            return None
        return max(0.0, self.sweep_at - time.monotonic())

    def sweep_if_due(self) -> None:
        """Kills processes left in sessions of ended jobs (not of running ones)."""
        if self.sweep_at is None or time.monotonic() < self.sweep_at:
            return
        for pid in session_members(self.ended - self.groups):
            _kill(pid, group=False)
        self.ended.clear()
        self.sweep_at = None

    def kill_everything(self) -> None:
        """The worker is gone: kill every registered cgroup, group and session, remove
        the cgroups and dirs."""
        if self.cgroup_root is not None:
            _kill_cgroup(self.cgroup_root)  # recursive: every attempt's, registered or not
        for path in self.cgroups:
            _kill_cgroup(path)
        sessions = self.groups | self.ended
        for _ in range(_FINAL_ROUNDS):
            for pgid in self.groups:
                _kill(pgid, group=True)
            survivors = session_members(sessions)
            if not survivors:
                break
            for pid in survivors:
                _kill(pid, group=False)
            time.sleep(0.05)
        for path in self.cgroups:
            _remove_cgroup(path)
        if self.cgroup_root is not None:
            _remove_cgroup(self.cgroup_root)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


def serve(fd: int, registry: Registry) -> None:
    """Reads commands from ``fd`` until EOF, sweeping ended sessions on the way."""
    buffer = b""
    while True:
        readable, _, _ = select.select([fd], [], [], registry.sweep_timeout())
        if readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                try:
                    registry.handle(line.decode())
                except ValueError as exc:
                    print(f"batchyard reaper: ignored {line!r}: {exc}", file=sys.stderr)
            # Let messages pile up in the pipe: one wake-up per batch, not per job start.
            time.sleep(READ_PAUSE)
        registry.sweep_if_due()


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    registry = Registry()
    try:
        serve(sys.stdin.fileno(), registry)
    finally:
        registry.kill_everything()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
