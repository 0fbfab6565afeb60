"""Resource limits of an attempt: the job's ``resources``, capped by the worker, as rlimits.

What a job may use comes from its ``resources`` (``ResourceRequirements``) and the worker's
``--max-memory``, ``--max-cpu-time``, ``--max-open-files`` and ``--max-processes``: each
worker value is both the default of jobs that ask for nothing and the cap of jobs that ask
for more (the attempt's log then says the request was capped). ``output_bytes`` is the
output collector's business (:mod:`batchyard.worker.output.collector`), not a limit of the process.

===================  ==================  ============================================
resource             rlimit              what the job sees past it
===================  ==================  ============================================
``memory_bytes``     ``RLIMIT_AS``       allocations fail (``MemoryError``, ``ENOMEM``)
``cpu_time``         ``RLIMIT_CPU``      ``SIGXCPU`` (kills by default), ``SIGKILL``
                                         :data:`CPU_KILL_GRACE` CPU seconds later
``open_files``       ``RLIMIT_NOFILE``   ``open()`` fails with ``EMFILE``
``processes``        ``RLIMIT_NPROC``    ``fork()`` fails with ``EAGAIN``
===================  ==================  ============================================

They are rlimits, so know their edges:

* ``RLIMIT_AS`` counts address space, not resident memory: runtimes that reserve much more
  than they touch (the JVM, Go, glibc's per-thread malloc arenas) need headroom.
* ``RLIMIT_AS``, ``RLIMIT_CPU`` and ``RLIMIT_NOFILE`` hold per process: every process of the
  job gets the whole amount (a job forking 4 workers may use 4 times the CPU time).
* ``RLIMIT_NPROC`` counts every process (thread, in fact) of the job's *user*, not of the
  job: with jobs running as the worker's user, the worker's own threads and every other job
  count against it. It bounds a fork bomb, but only a user per job makes it exact: with
  ``--job-users`` (:mod:`~batchyard.worker.execution.job_users`) it counts the job's processes only.
  The kernel does not apply it to root at all; an attempt's log says so when it would be
  void.

The limits are set in the job's process before it executes, without ``preexec_fn`` (unsafe
in a process with threads, and grpc has threads): the command is run through ``prlimit``
from util-linux (measured: +0.6 ms per start) or, where it is missing, a minimal Python
trampoline (``python -I -S -c``, +7 ms) that calls ``setrlimit`` and ``execv``. Either
executes in place, so the job keeps the pid (and process group) the worker watches. A job
without limits runs as it did, wrapped in nothing. With ``--job-users`` the wrapper already
runs as the job's user: lowering a limit needs no privilege.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import signal
import sys
from dataclasses import dataclass, field, replace

from batchyard.config import Flag, Kind, Values, duration, integer, size
from batchyard.v1 import job_pb2
from batchyard.worker.execution.command import Command

CPU_KILL_GRACE = 1
"""CPU seconds between SIGXCPU (the soft limit) and SIGKILL (the hard limit)."""
_SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"
_TRAMPOLINE = """\
import os, resource, sys
for item in sys.argv[1].split(","):
    name, soft, hard = item.split(":")
    resource.setrlimit(getattr(resource, name), (int(soft), int(hard)))
try:
    os.execv(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.stderr.write(f"cannot execute {sys.argv[2]}: {exc.strerror}\\n")
    os._exit(127)
"""


def find_prlimit() -> str | None:
    """util-linux's ``prlimit`` in the system directories, if installed."""
    return shutil.which("prlimit", path=_SYSTEM_PATH)


@dataclass(frozen=True)
class ResourceLimits:
    """The limits applied to one attempt's processes (None: not limited)."""

    memory_bytes: int | None = None
    cpu_seconds: int | None = None
    open_files: int | None = None
    processes: int | None = None

    def __bool__(self) -> bool:
        return any(
            value is not None
            for value in (self.memory_bytes, self.cpu_seconds, self.open_files, self.processes)
        )

    def describe(self) -> str:
        """E.g. "memory 256 MiB (address space), CPU time 2s, open files 64"."""
        parts = []
        if self.memory_bytes is not None:
            parts.append(f"memory {format_bytes(self.memory_bytes)} (address space)")
        if self.cpu_seconds is not None:
            parts.append(f"CPU time {self.cpu_seconds}s")
        if self.open_files is not None:
            parts.append(f"open files {self.open_files}")
        if self.processes is not None:
            parts.append(f"processes {self.processes} (of the user)")
        return ", ".join(parts) or "none"

    def rlimits(self) -> list[tuple[str, int, int]]:
        """``(RLIMIT_NAME, soft, hard)`` for each limit set."""
        found = []
        if self.memory_bytes is not None:
            found.append(("RLIMIT_AS", self.memory_bytes, self.memory_bytes))
        if self.cpu_seconds is not None:
            found.append(("RLIMIT_CPU", self.cpu_seconds, self.cpu_seconds + CPU_KILL_GRACE))
        if self.open_files is not None:
            found.append(("RLIMIT_NOFILE", self.open_files, self.open_files))
        if self.processes is not None:
            found.append(("RLIMIT_NPROC", self.processes, self.processes))
        return found


@dataclass(frozen=True)
class WorkerLimits:
    """The worker's caps, which are also the limits of jobs that ask for none."""

    memory_bytes: int | None = None
    cpu_seconds: int | None = None
    open_files: int | None = None
    processes: int | None = None
    prlimit: str | None = field(default_factory=find_prlimit)
    """The ``prlimit`` program; None: the Python trampoline sets the limits."""
    python: str = sys.executable
    """The interpreter of the trampoline."""

    @classmethod
    def from_values(cls, values: Values) -> WorkerLimits:
        return cls(
            memory_bytes=values[MAX_MEMORY],
            cpu_seconds=values[MAX_CPU_TIME],
            open_files=values[MAX_OPEN_FILES],
            processes=values[MAX_PROCESSES],
        )


_CAP = "the default of jobs that set none, and the most a job's resources may ask"
_CPU = duration(0.001)


def _whole_cpu_seconds(raw: str) -> int:
    """Whole CPU seconds (RLIMIT_CPU's unit), rounded up."""
    return math.ceil(_CPU.parse(raw))


MAX_MEMORY = Flag("max-memory", size(1), f"address space of each job process: {_CAP}")
MAX_CPU_TIME = Flag(
    "max-cpu-time",
    Kind(_whole_cpu_seconds, lambda seconds: f"{seconds}s", "DURATION"),
    f"CPU time of each job process (whole seconds, rounded up): {_CAP}",
)
MAX_OPEN_FILES = Flag("max-open-files", integer(1), f"open files of each job process: {_CAP}")
MAX_PROCESSES = Flag(
    "max-processes",
    integer(1),
    f"processes of the jobs' user (RLIMIT_NPROC, not applied to root): {_CAP}",
)
FLAGS = (MAX_MEMORY, MAX_CPU_TIME, MAX_OPEN_FILES, MAX_PROCESSES)


def attempt_limits(
    resources: job_pb2.ResourceRequirements, caps: WorkerLimits, *, job_uid: int | None = None
) -> tuple[ResourceLimits, list[str]]:
    """The attempt's limits, and notes for its log (requests capped, limits void);
    ``job_uid``: the user the job runs as, None for the worker's own."""
    notes: list[str] = []

    def pick(name: str, asked: int, cap: int | None, show: str) -> int | None:
        if asked <= 0:
            return cap
        if cap is not None and asked > cap:
            notes.append(
                f"resources.{name} of {_show(asked, show)} is over this worker's limit: "
                f"limited to {_show(cap, show)}"
            )
            return cap
        return asked

    cpu_asked = 0
    if resources.HasField("cpu_time"):
        seconds = resources.cpu_time.ToTimedelta().total_seconds()
        cpu_asked = max(math.ceil(seconds), 1) if seconds > 0 else 0
    limits = ResourceLimits(
        memory_bytes=pick("memory_bytes", resources.memory_bytes, caps.memory_bytes, "bytes"),
        cpu_seconds=pick("cpu_time", cpu_asked, caps.cpu_seconds, "seconds"),
        open_files=pick("open_files", resources.open_files, caps.open_files, ""),
        processes=pick("processes", resources.processes, caps.processes, ""),
    )
    limits = _within_inherited(limits)
    if limits.processes is not None and (os.geteuid() if job_uid is None else job_uid) == 0:
        notes.append(
            "the processes limit does not hold for this job: the kernel does not apply "
            "RLIMIT_NPROC to root, and jobs run as the worker's user"
        )
    return limits, notes


def limited_command(command: Command, limits: ResourceLimits, caps: WorkerLimits) -> Command:
    """The command that sets the limits, then executes ``command`` in place."""
    rlimits = limits.rlimits()
    if not rlimits:
        return command
    if caps.prlimit is not None:
        flags = [f"--{_PRLIMIT_FLAGS[name]}={soft}:{hard}" for name, soft, hard in rlimits]
        argv: tuple[str, ...] = (caps.prlimit, *flags, "--", *command.argv)
    else:
        spec = ",".join(f"{name}:{soft}:{hard}" for name, soft, hard in rlimits)
        argv = (caps.python, "-I", "-S", "-c", _TRAMPOLINE, spec, *command.argv)
    return replace(command, argv=argv)


_PRLIMIT_FLAGS = {
    "RLIMIT_AS": "as",
    "RLIMIT_CPU": "cpu",
    "RLIMIT_NOFILE": "nofile",
    "RLIMIT_NPROC": "nproc",
}


def _within_inherited(limits: ResourceLimits) -> ResourceLimits:
    """Drops a limit at or above the worker's own hard limit: the job inherits that one
    already, and raising a hard limit needs privileges (the job would not start)."""
    changes: dict[str, int | None] = {}
    for attribute, name in (
        ("memory_bytes", "RLIMIT_AS"),
        ("cpu_seconds", "RLIMIT_CPU"),
        ("open_files", "RLIMIT_NOFILE"),
        ("processes", "RLIMIT_NPROC"),
    ):
        value = getattr(limits, attribute)
        _, hard = resource.getrlimit(getattr(resource, name))
        if value is not None and hard != resource.RLIM_INFINITY and value >= hard:
            changes[attribute] = None
    return replace(limits, **changes) if changes else limits


def cpu_limit_reached(returncode: int, limits: ResourceLimits, cpu_seconds: float) -> bool:
    """Whether a job that ended with ``returncode`` was killed for its CPU time: SIGXCPU,
    or SIGKILL once its leader had used the CPU time allowed."""
    if limits.cpu_seconds is None or returncode >= 0:
        return False
    if -returncode == signal.SIGXCPU:
        return True
    return -returncode == signal.SIGKILL and cpu_seconds >= limits.cpu_seconds


def format_bytes(size: int) -> str:
    """1073741824 → "1 GiB", 1536 → "1.5 KiB", 1000 → "1000 bytes"."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            value = size / scale
            return f"{value:g} {unit}" if value.is_integer() else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _show(value: int, unit: str) -> str:
    if unit == "bytes":
        return format_bytes(value)
    if unit == "seconds":
        return f"{value}s"
    return str(value)
