"""A user per slot: ``--job-users FIRST_UID[:COUNT]`` runs every job as a uid of its own.

Without it every job runs as the worker's user, so a job can read a concurrent job's
``/proc/<pid>/environ`` (its secrets), ptrace it, and open its attempt directory. With it —
the worker must run as root — the job in a slot runs as uid and gid ``FIRST_UID + i``, with
no supplementary groups (no account needed: no name, no home, no login), and the slot's
attempt directory belongs to that uid with mode 0700. The kernel then keeps concurrent jobs
apart: ``/proc/<pid>/environ`` and ptrace need the same uid, a 0700 directory opens only to
its owner, and the jobs have no capabilities (root's are dropped with the uid).

What makes that hold, and what it costs (only with the flag; without it nothing changes):

* **Start.** The job's command runs through util-linux's ``setpriv --reuid --regid
  --clear-groups``, which switches the uid (real, effective and saved: root's capabilities
  go with it) and executes the job in place, so it keeps the pid and process group the
  worker watches — the way the limits wrapper does (which then runs as the job's uid: it
  only lowers limits, which needs no privilege). Where ``setpriv`` is missing,
  :class:`subprocess.Popen`'s ``user``/``group``/``extra_groups=[]`` switch the child
  between fork and exec instead (in C, no ``preexec_fn``), but then CPython forks rather
  than ``vfork``-ing, and a fork copies the worker's page tables with the GIL held:
  measured 3 ms per start for a fresh worker, 7 ms with 100 MiB more resident, against
  0.6 ms, and the trivial-run benchmark fell from ~600 to ~80 runs/s. ``setpriv`` costs one
  more exec (~1 ms, in the child, not in the worker): ~450 runs/s.
* **Sources.** What the worker writes for the job as root — the payload, inline text, a GIT
  checkout, an S3 download — is handed to the slot's uid (``lchown``, never following a
  symlink) before the job starts, so the job owns its whole directory as it did when it ran
  as the worker's user: it can read, run and change its files. (Making them world-readable
  inside the 0700 directory would work for reading, but the job could not change or remove
  them, which a checkout's build may need.)
* **The end.** A job that left its session (``setsid``) escapes the process-group kill. A
  slot's uid belongs to one attempt at a time, so when the attempt is over the worker kills
  every process of that uid (``kill -KILL -1`` run as the uid: one pass is enough, as the
  kernel holds off forks while it signals): nothing of a tenant's job survives to read the
  next job of the slot, and no process of the uid touches the directory while root
  prepares the next attempt in it. A starting worker does the same for every uid of the
  range (leftovers of a worker that died). The killing shell first checks that it runs as
  the uid (run as root, ``kill -1`` would take down the machine). It is one more short
  process per attempt, run in a thread: the trivial-run benchmark, ~450 runs/s without it,
  does ~265 with it; a job that runs for a second would not notice.
* **Reach.** The job's uid must be able to execute the interpreters (``--python``, and the
  worker's own, which runs SQL jobs and the limits trampoline) and to reach the state
  directory; WORKSPACE sources must be readable by it. :func:`check_access` tries that once
  at start-up, as the first uid, and the worker refuses to start if it fails — an
  interpreter below ``/root`` (mode 0700), a pyenv's for one, is the usual culprit.

Pick a range no account and no file on the machine uses (the jobs could read and signal
what belongs to those uids), and a range of its own for each worker on the machine: a
worker kills every process of its uids.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchyard.config import Flag, SettingsError, Values, text

MAX_UID = 2**31 - 2
"""The highest uid a job may get (uid_t's -1 means "unchanged" to the kernel)."""
OVERFLOW_UID = 65534
"""``nobody``, the uid unmapped owners show as: never a job's."""
_SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin"
_SEARCHABLE = 0o711
_KILL_ALL = """\
while read -r key real effective saved _; do
    if [ "$key" = Uid: ]; then break; fi
done < /proc/self/status
if [ "$1" != 0 ] && [ "$real" = "$1" ] && [ "$effective" = "$1" ] && [ "$saved" = "$1" ]; then
    kill -KILL -1
else
    echo "not switched to uid $1 (uids: $real $effective $saved): killing nothing" >&2
    exit 3
fi
"""
"""``kill -KILL -1`` (every process the caller may signal but itself) — only once the shell
has checked, from its own /proc/self/status, that it runs as the job uid and nothing else:
run as root by mistake it would kill every process on the machine."""
_PROBE_TIMEOUT = 30.0
_PROBE = """\
import os, subprocess, sys
import batchyard.worker
state_dir, python = sys.argv[1], sys.argv[2]
if not os.access(state_dir, os.X_OK):
    sys.exit(f"cannot reach the state directory {state_dir} (it, or a directory above it, "
             "is not searchable by others)")
if python != sys.executable:
    try:
        subprocess.run([python, "-I", "-S", "-c", ""], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"cannot run the interpreter of PYTHON jobs {python}: {exc}")
"""


class JobUsersError(Exception):
    """The job users cannot be used; the message says why."""


@dataclass(frozen=True)
class JobUsers:
    """The uids of the slots: ``first``, ``first + 1``, … (``count`` of them)."""

    first: int
    count: int

    @property
    def uids(self) -> range:
        return range(self.first, self.first + self.count)

    def describe(self) -> str:
        return f"uids {self.first}-{self.first + self.count - 1}"


JOB_USERS = Flag(
    "job-users",
    text(metavar="FIRST_UID[:COUNT]"),
    "run the job of slot i as uid and gid FIRST_UID+i, with no supplementary groups and no "
    "account needed, so concurrent jobs cannot read each other's environment or files; "
    "COUNT uids (default: --slots), a range no account uses; the worker must run as root",
    default_text="jobs run as the worker's user",
)


def job_users_from_values(values: Values, *, slots: int, euid: int) -> JobUsers | None:
    """The ``--job-users`` the flags give, checked against the slots and the worker's uid."""
    if not values.given(JOB_USERS):
        return None
    try:
        return parse_job_users(values[JOB_USERS], slots=slots, euid=euid)
    except ValueError as exc:
        raise SettingsError(f"{values.origin(JOB_USERS)}: {exc}") from None


def parse_job_users(raw: str, *, slots: int, euid: int) -> JobUsers:
    """``FIRST_UID[:COUNT]`` (COUNT defaults to ``slots``); ValueError when it cannot be
    used, and when the worker (effective uid ``euid``) is not root."""
    first_text, _, count_text = raw.strip().partition(":")
    try:
        first = int(first_text)
        count = int(count_text) if count_text else slots
    except ValueError:
        raise ValueError(f"{raw!r} is not FIRST_UID[:COUNT], e.g. 200000 or 200000:8") from None
    if first < 1:
        raise ValueError("FIRST_UID must be 1 or more (jobs never run as root)")
    if count < slots:
        raise ValueError(f"COUNT {count} is fewer than the {slots} slots (one uid per slot)")
    users = JobUsers(first, count)
    last = users.uids[-1]
    if last > MAX_UID:
        raise ValueError(f"the last uid, {last}, is over {MAX_UID}")
    if OVERFLOW_UID in users.uids:
        raise ValueError(f"the range {users.describe()} holds {OVERFLOW_UID} (nobody)")
    if euid != 0:
        raise ValueError(
            f"needs the worker to run as root, to start jobs as other users "
            f"(it runs as uid {euid}); without the flag jobs run as the worker's user"
        )
    return users


@functools.cache
def find_setpriv() -> str | None:
    """util-linux's ``setpriv`` in the system directories, if installed."""
    return shutil.which("setpriv", path=_SYSTEM_PATH)


def as_user(uid: int) -> dict[str, Any]:
    """:class:`subprocess.Popen` arguments that run the child as ``uid`` (and gid ``uid``),
    with no supplementary groups."""
    return {"user": uid, "group": uid, "extra_groups": []}


def switched(argv: Sequence[str], uid: int) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The argv and :class:`subprocess.Popen` arguments that run ``argv`` as ``uid`` (and gid
    ``uid``) with no supplementary groups, in place: through ``setpriv`` when there is one."""
    setpriv = find_setpriv()
    if setpriv is None:
        return tuple(argv), as_user(uid)
    return (setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *argv), {}


def kill_processes_of(uid: int) -> None:
    """Kills every process of ``uid`` (blocking: one short subprocess, ~2 ms); OSError when
    it cannot run, or did not run as ``uid``."""
    if uid < 1:
        raise ValueError(f"no job runs as uid {uid}")
    argv, switch = switched(("/bin/sh", "-c", _KILL_ALL, "sh", str(uid)), uid)
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        close_fds=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
        cwd="/",
        **switch,
    )
    if done.returncode != 0:
        raise OSError(f"killing the processes of uid {uid} failed: {_last_line(done)}")


def hand_over(root: Path, uid: int) -> None:
    """Gives ``root`` and everything below it to ``uid`` (user and group). Symlinks are
    changed themselves, never followed, and never walked into. Call it only while no
    process of ``uid`` runs (the tree must not change meanwhile)."""
    try:
        os.chown(root, uid, uid, follow_symlinks=False)
    except FileNotFoundError:
        return
    for _, subdirectories, files, directory in os.fwalk(root, follow_symlinks=False):
        for name in (*subdirectories, *files):
            os.chown(name, uid, uid, dir_fd=directory, follow_symlinks=False)


def check_access(users: JobUsers, *, state_dir: Path, interpreters: Sequence[str]) -> None:
    """Checks, as the first job uid, that jobs can run: a process can be started as that
    uid the way jobs are, the worker's interpreter (``interpreters[0]``, with ``-I``) imports
    the worker (so SQL jobs and the limits trampoline can run), the state directory is
    reachable, and ``interpreters[1:]`` (the interpreter of PYTHON jobs) run. Makes the state
    directory searchable by others (its parts protect themselves: they are 0700 but for the
    slots); raises :class:`JobUsersError`."""
    state_dir.mkdir(mode=_SEARCHABLE, parents=True, exist_ok=True)
    mode = stat.S_IMODE(state_dir.stat().st_mode)
    if mode & _SEARCHABLE != _SEARCHABLE:
        state_dir.chmod(mode | _SEARCHABLE)
    _check_switch(users.first)
    own, *others = interpreters
    try:
        argv = [own, "-I", "-c", _PROBE, str(state_dir), *(others or [own])]
        probe = _run_check(argv, as_user(users.first))  # so OSError says what failed
    except OSError as exc:
        raise JobUsersError(
            f"uid {users.first} cannot run the worker's interpreter {own}: {exc.strerror} "
            "(install the worker where other users can read and execute it; an interpreter "
            "below /root, like a pyenv's, is not)"
        ) from None
    if probe.returncode != 0:
        raise JobUsersError(f"uid {users.first}: {_last_line(probe)}")


def _check_switch(uid: int) -> None:
    """Starts ``id`` as ``uid`` the way jobs start (through setpriv, where there is one)."""
    argv, switch = switched(["/bin/sh", "-c", "id -u; id -G"], uid)
    try:
        done = _run_check(argv, switch)
    except OSError as exc:
        raise JobUsersError(f"cannot start a process as uid {uid}: {exc.strerror}") from None
    if done.stdout.split() != [str(uid).encode()] * 2:
        raise JobUsersError(f"cannot start a process as uid {uid}: {_last_line(done)}")


def _run_check(argv: Sequence[str], switch: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    """Runs a start-up check with the :class:`subprocess.Popen` arguments ``switch``."""
    try:
        return subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            close_fds=True,
            check=False,
            cwd="/",
            env={"PATH": os.defpath},
            timeout=_PROBE_TIMEOUT,
            **switch,
        )
    except subprocess.TimeoutExpired:
        raise JobUsersError(f"a check as a job uid did not finish in {_PROBE_TIMEOUT:g}s") from None


def _last_line(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"
