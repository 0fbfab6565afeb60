"""Throwaway environments for the peers, outside the project's dependencies: a venv per
Python peer (pip from PyPI) and one node_modules (npm), under .batchyard/peers (ignored by
git) or $BATCHYARD_BENCH_PEERS_HOME. Installed once, reused while the pinned versions
match."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DRIVERS = Path(__file__).resolve().parent / "drivers"

# Pinned, so that runs compare. graphile-worker 0.18 needs node >= 22.18; this machine
# has node 20, so 0.17.3 (the last release for it).
PYTHON_PEERS = {
    "pgqueuer": ("pgqueuer==1.6.0", "asyncpg==0.32.0"),
    "procrastinate": ("procrastinate==3.10.0", "psycopg[binary]==3.3.9", "psycopg-pool==3.3.3"),
}
NODE_PACKAGES = ("graphile-worker@0.17.3", "pg@8.23.1")
MARKER = ".bench-requirements"


def home() -> Path:
    return Path(os.environ.get("BATCHYARD_BENCH_PEERS_HOME", ROOT / ".batchyard" / "peers"))


@dataclass(frozen=True)
class Driver:
    """How to run one system's driver: the command before the driver's own arguments,
    and the environment it needs."""

    command: tuple[str, ...]
    env: dict[str, str]


def _installed(where: Path, wanted: str) -> bool:
    marker = where / MARKER
    return marker.exists() and marker.read_text() == wanted


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    print(f"  installing: {' '.join(cmd)}", file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def python_peer(name: str, reinstall: bool = False) -> Driver:
    requirements = PYTHON_PEERS[name]
    venv = home() / f"py-{name}"
    wanted = "\n".join(requirements)
    python = venv / "bin" / "python"
    if reinstall or not _installed(venv, wanted) or not python.exists():
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        # The base interpreter, not the project's venv: nothing of the project leaks in.
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(venv)])
        _run([str(python), "-m", "pip", "install", "-q", *requirements])
        (venv / MARKER).write_text(wanted)
    script = DRIVERS / f"{name}_peer.py"
    return Driver((str(python), "-X", "utf8", str(script)), {})


def graphile(reinstall: bool = False) -> Driver:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("graphile-worker needs node and npm on PATH")
    where = home() / "node"
    wanted = "\n".join(NODE_PACKAGES)
    if reinstall or not _installed(where, wanted):
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        (where / "package.json").write_text('{"name": "batchyard-bench-peers", "private": true}\n')
        _run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *NODE_PACKAGES], where)
        (where / MARKER).write_text(wanted)
    env = {"NODE_PATH": str(where / "node_modules")}
    return Driver((node, str(DRIVERS / "graphile_peer.cjs")), env)


def floors() -> Driver:
    """The floors run on the project's own interpreter (asyncpg is a project dependency)."""
    return Driver((sys.executable, str(DRIVERS / "floors.py")), {})
