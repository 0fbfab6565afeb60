"""What tests of ``--job-users`` need: root, uids no account uses, directories those uids can
reach, and an interpreter they can run.

The suite's own interpreter may sit where no other user can reach it (a pyenv's below
``/root``, mode 0700): then a job uid can run neither PYTHON jobs nor the SQL runner with
it. :func:`job_python` then makes a virtual environment from the system's interpreter of
the same version, whose ``site`` adds this environment's site-packages (readable by all),
so it imports the worker and its dependencies just as the suite's interpreter does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

FIRST_UID = 2_310_000 + (os.getpid() % 10_000) * 16
"""The first job uid of this test process: far from the accounts of a usual machine, and
apart from another suite's running at the same time (a worker kills every process of its
job uids)."""
SEARCHABLE = 0o711

requires_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="--job-users needs root (the worker starts each job as another uid); "
    "the suite runs as uid " + str(os.geteuid()),
)


def free_range(first: int, count: int) -> None:
    """Skips the test when an account uses one of the uids (its files would be the jobs')."""
    for uid in range(first, first + count):
        try:
            pwd.getpwuid(uid)
        except KeyError:
            continue
        pytest.skip(f"uid {uid} belongs to an account on this machine")


def reachable_dir(prefix: str) -> Path:
    """A fresh directory below /tmp that every uid can pass through (but not list)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(SEARCHABLE)
    return path


def runs_as(uid: int, argv: list[str]) -> bool:
    """Whether ``argv`` runs and exits 0 as ``uid``."""
    try:
        done = subprocess.run(
            argv,
            user=uid,
            group=uid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


def job_python(directory: Path, uid: int) -> str | None:
    """An interpreter ``uid`` can run that imports the worker (the suite's own if it can),
    made in ``directory``; None when there is none."""
    check = ["-I", "-c", "import batchyard.worker, asyncpg"]
    if runs_as(uid, [sys.executable, *check]):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/bin:/usr/local/bin")
    site_packages = sysconfig.get_paths()["purelib"]
    if system is None:
        return None
    venv = directory / "job-python"
    made = subprocess.run(
        [system, "-m", "venv", "--without-pip", str(venv)], capture_output=True, check=False
    )
    if made.returncode != 0:
        return None
    pth = venv / "lib" / version / "site-packages" / "suite-site-packages.pth"
    pth.write_text(f"import site; site.addsitedir({site_packages!r})\n")
    python = str(venv / "bin" / "python")
    return python if runs_as(uid, [python, *check]) else None


@contextlib.asynccontextmanager
async def reachable_postgres(dsn: str, directory: Path) -> AsyncIterator[str]:
    """``dsn`` through a Unix socket in ``directory`` that every uid may connect to.

    The suite's embedded PostgreSQL listens only on a socket in its data directory (mode
    0700, as PostgreSQL wants it), which a job uid cannot reach; this relays a socket of
    the same name elsewhere to it, byte for byte, in this event loop."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    socket_dir = query.get("host") or parts.hostname or ""
    if not socket_dir.startswith("/"):
        yield dsn  # a TCP address: reachable as it is
        return
    name = f".s.PGSQL.{query.get('port') or parts.port or 5432}"
    upstream = str(Path(socket_dir) / name)

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_unix_connection(upstream)
        await asyncio.gather(pump(client_r, up_w), pump(up_r, client_w), return_exceptions=True)

    directory.mkdir(mode=SEARCHABLE, exist_ok=True)
    path = directory / name
    server = await asyncio.start_unix_server(relay, path=str(path))
    path.chmod(0o777)
    try:
        query["host"] = str(directory)
        yield urlunsplit(parts._replace(query=urlencode(query)))
    finally:
        server.close()
        await server.wait_closed()
