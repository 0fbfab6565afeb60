"""The worker's handle on its reaper sidecar (see :mod:`batchyard.worker.reaper.sidecar`).

Started once per worker process. Every message is one short line written to a pipe (an
atomic write well under PIPE_BUF), so registering a job costs a system call, not a process.
The pipe's write end is close-on-exec and jobs are started with ``close_fds=True``, so only
the worker holds it: when the worker dies, the reaper sees EOF at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import structlog

_log = structlog.get_logger(__name__)


class Reaper:
    """Registers job process groups, attempt cgroups and attempt directories with the
    reaper sidecar."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        if popen.stdin is None:
            raise ValueError("the reaper needs a pipe on its stdin")
        self._popen = popen
        self._fd: int | None = popen.stdin.fileno()
        self._broken = False

    @classmethod
    def start(cls, python: str = sys.executable) -> Reaper:
        """Starts the sidecar (in its own session, so terminal signals do not reach it)."""
        popen = subprocess.Popen(
            [python, "-m", "batchyard.worker.reaper.sidecar"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        return cls(popen)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return not self._broken and self._popen.poll() is None

    def track_group(self, pgid: int) -> None:
        self._send(f"group {pgid}")

    def release_group(self, pgid: int) -> None:
        self._send(f"ungroup {pgid}")

    def track_cgroup_root(self, path: Path) -> None:
        self._send(f"cgroot {path}")

    def track_cgroup(self, path: Path) -> None:
        self._send(f"cgroup {path}")

    def release_cgroup(self, path: Path) -> None:
        self._send(f"uncgroup {path}")

    def track_dir(self, path: Path) -> None:
        self._send(f"dir {path}")

    def release_dir(self, path: Path) -> None:
        self._send(f"undir {path}")

    async def wait_exit(self) -> int:
        """Returns when the sidecar exits (the monitor treats that as fatal)."""
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()
        pidfd = os.pidfd_open(self._popen.pid)

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, on_exit)
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return self._popen.wait()

    def close(self, timeout: float = 10.0) -> None:
        """Closes the pipe (the sidecar kills anything left) and waits for it to exit."""
        fd, self._fd = self._fd, None
        if fd is not None and self._popen.stdin is not None:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _log.error("reaper_stuck", pid=self._popen.pid)
            self._popen.kill()
            self._popen.wait()

    def _send(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a reaper message is one line")
        if self._fd is None or self._broken:
            return
        try:
            os.write(self._fd, (line + "\n").encode())
        except OSError as exc:
            self._broken = True
            _log.error("reaper_write_failed", error=str(exc))
