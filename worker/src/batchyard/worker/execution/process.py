"""One job process group: started in its own session, watched, signalled, drained.

The job runs via :class:`subprocess.Popen` with ``start_new_session=True`` (never
``preexec_fn``), stdin from /dev/null and stdout/stderr on two pipes the worker owns. Both
pipes are read continuously by asyncio pipe transports, chunk by chunk, straight into a
callback, so a job never blocks on a full pipe and no ``readline()`` limit applies.

The leader's exit is watched through a pidfd (Linux ≥ 5.3), not asyncio's child watcher:
the pidfd becomes readable when the leader exits but leaves it a zombie until
:meth:`JobProcess.reap`. While the zombie exists its pid — which is also the process group
id — cannot be reused, so the final ``killpg(SIGKILL)`` that takes down the grandchildren can
never hit an unrelated process group. No thread is spent per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from batchyard.worker.execution.cgroups import AttemptCgroup
from batchyard.worker.execution.command import Command
from batchyard.worker.execution.job_users import switched
from batchyard.worker.outcome import Usage
from batchyard.worker.output.collector import Stream

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DataCallback = Callable[[Stream, bytes], None]
EndCallback = Callable[[Stream], None]


class _PipeReader(asyncio.Protocol):
    """Hands every chunk read from one pipe to a callback."""

    def __init__(self, stream: Stream, on_data: DataCallback, on_end: EndCallback) -> None:
        self._stream = stream
        self._on_data = on_data
        self._on_end = on_end
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._on_data(self._stream, data)

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self._on_end(self._stream)
            self.closed.set_result(None)


class JobProcess:
    """A started job: its leader's exit, its process group, its two output pipes."""

    def __init__(
        self, popen: subprocess.Popen[bytes], pidfd: int, cgroup: AttemptCgroup | None = None
    ) -> None:
        self._popen = popen
        self._pidfd: int | None = pidfd
        self.cgroup = cgroup
        """The attempt's cgroup, which every process of the job is born in (None: only
        the process group holds them together)."""
        self._rusage: resource.struct_rusage | None = None
        self._loop = asyncio.get_running_loop()
        self._reaped = False
        self._readers: list[_PipeReader] = []
        self._transports: list[asyncio.ReadTransport] = []
        self.exited: asyncio.Future[None] = self._loop.create_future()
        """Done when the leader has exited (it stays a zombie until :meth:`reap`)."""
        self._loop.add_reader(pidfd, self._on_pidfd_readable)

    @classmethod
    async def start(
        cls,
        command: Command,
        on_data: DataCallback,
        on_end: EndCallback,
        on_spawn: Callable[[int], None] | None = None,
        cgroup: AttemptCgroup | None = None,
    ) -> JobProcess:
        """Starts the command in a new session (inside ``cgroup`` when given: the
        trampoline joins it before the job executes); raises OSError if it cannot be
        executed. ``on_spawn(pgid)`` runs right after the fork, before anything is awaited,
        so the reaper knows the group before any other work of the worker's loop runs."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        try:
            popen = _spawn(command, out_write, err_write, cgroup)
        except BaseException:
            os.close(out_read)
            os.close(err_read)
            raise
        finally:
            os.close(out_write)
            os.close(err_write)
        if on_spawn is not None:
            on_spawn(popen.pid)
        try:
            process = cls(popen, os.pidfd_open(popen.pid), cgroup)
        except BaseException:
            if cgroup is not None:
                cgroup.kill()
            _kill_unwatched(popen, out_read, err_read)
            raise
        try:
            await process._connect(Stream.STDOUT, out_read, on_data, on_end)
            await process._connect(Stream.STDERR, err_read, on_data, on_end)
        except BaseException:
            process.close()
            raise
        return process

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def pgid(self) -> int:
        """The job's process group id (and session id): the leader's pid."""
        return self._popen.pid

    def signal_group(self, sig: signal.Signals) -> bool:
        """Sends ``sig`` to the whole process group; SIGKILL also kills everything in the
        attempt's cgroup (escapees of the group included). False if nothing was signalled."""
        if sig == signal.SIGKILL and self.cgroup is not None:
            self.cgroup.kill()
        if self._reaped:
            return False  # the group id may belong to someone else by now
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def cpu_seconds(self) -> float:
        """CPU time the leader has used (user + system), readable until :meth:`reap`;
        0.0 when it cannot be read."""
        if self._reaped:
            return 0.0
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_bytes()
        except OSError:
            return 0.0
        fields = stat[stat.rfind(b")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        return (utime + stime) / _CLOCK_TICKS

    def reap(self) -> int:
        """Collects the exited leader's status (call after ``exited``): the return code."""
        if not self.exited.done():
            raise RuntimeError("the job's leader has not exited yet")
        returncode = self._wait4()
        self._reaped = True
        self._close_pidfd()
        return returncode

    def usage(self) -> Usage:
        """CPU time and peak memory of the job (call after :meth:`reap`, once the tree is
        dead): the cgroup's figures where it has them, else the rusage of the leader and
        the descendants it waited for (``ru_maxrss``: the largest one process reached)."""
        measured = self.cgroup.usage() if self.cgroup is not None else Usage()
        used = self._rusage
        if used is None:
            return measured
        return Usage(
            peak_memory_bytes=measured.peak_memory_bytes
            if measured.peak_memory_bytes is not None
            else used.ru_maxrss * 1024,
            cpu_seconds=measured.cpu_seconds
            if measured.cpu_seconds is not None
            else used.ru_utime + used.ru_stime,
        )

    def _wait4(self) -> int:
        """Waits for the leader with ``wait4``, keeping its rusage."""
        popen = self._popen
        if popen.returncode is not None:
            return popen.returncode
        while True:
            try:
                _, status, self._rusage = os.wait4(popen.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:  # reaped elsewhere (cannot happen with a pidfd)
                return popen.wait()
            break
        popen.returncode = os.waitstatus_to_exitcode(status)
        return popen.returncode

    async def drain(self, within: float) -> bool:
        """Waits until both pipes reach EOF; after ``within`` seconds closes them: False."""
        pending = [reader.closed for reader in self._readers]
        if not pending:
            return True
        _, not_done = await asyncio.wait(pending, timeout=within)
        if not_done:
            self._close_transports()
            return False
        return True

    def close(self) -> None:
        """Releases everything; kills the group first if the leader was never reaped."""
        if not self._reaped:
            self.signal_group(signal.SIGKILL)
            with contextlib.suppress(OSError):
                if self._popen.poll() is not None:
                    self._reaped = True
        self._close_pidfd()
        self._close_transports()
        if not self.exited.done():
            self.exited.cancel()

    async def _connect(
        self, stream: Stream, fd: int, on_data: DataCallback, on_end: EndCallback
    ) -> None:
        pipe = _pipe_file(fd)
        reader = _PipeReader(stream, on_data, on_end)
        try:
            transport, _ = await self._loop.connect_read_pipe(lambda: reader, pipe)
        except BaseException:
            pipe.close()
            raise
        self._readers.append(reader)
        self._transports.append(transport)

    def _on_pidfd_readable(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
        if not self.exited.done():
            self.exited.set_result(None)

    def _close_pidfd(self) -> None:
        if self._pidfd is None:
            return
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None

    def _close_transports(self) -> None:
        for transport in self._transports:
            transport.close()


def _spawn(
    command: Command, stdout: int, stderr: int, cgroup: AttemptCgroup | None
) -> subprocess.Popen[bytes]:
    """Forks and executes the job in a new session (what asyncio itself does, synchronously),
    as ``command.uid`` when it has one (:func:`~batchyard.worker.execution.job_users.switched`),
    in ``cgroup`` when given (joined before the user switch, which drops the right to)."""
    argv: Sequence[str] = command.argv
    switch: dict[str, Any] = {}
    if command.uid is not None:
        argv, switch = switched(argv, command.uid)
    if cgroup is not None:
        if switch:
            raise OSError(errno.EPERM, "a job user cannot join its cgroup without setpriv")
        _check_executable(command.argv[0], command.env.get("PATH"), command.cwd)
        argv = cgroup.wrap(tuple(argv))
    return subprocess.Popen(
        argv,
        cwd=command.cwd,
        env=dict(command.env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        close_fds=True,
        **switch,
    )


def _check_executable(program: str, path: str | None, cwd: Path) -> None:
    """Raises the OSError ``execve`` would (the trampoline would only exit with 126 or
    127), for the job's program: missing, not a file, not executable."""
    found = shutil.which(program, path=path or os.defpath) if "/" not in program else program
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    where = cwd / found
    if not where.is_file() or not os.access(where, os.X_OK):
        code = errno.EACCES if where.exists() else errno.ENOENT
        raise OSError(code, os.strerror(code), program)


def _pipe_file(fd: int) -> BinaryIO:
    """The read end of a pipe as an unbuffered file object (closed with its transport)."""
    try:
        return open(fd, "rb", buffering=0, closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _kill_unwatched(popen: subprocess.Popen[Any], *fds: int) -> None:
    """Undoes a start that failed after the fork: kill the group, reap, close the pipes."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()
    for fd in fds:
        os.close(fd)
