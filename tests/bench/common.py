"""Start a real server (and workers) for a benchmark, each in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from tests.processes import free_port, stop, wait_serving

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def bench_server(*extra: str) -> AsyncIterator[tuple[str, Path]]:
    """A server on a fresh embedded PostgreSQL; yields (target, scratch dir)."""
    # Scratch on the project's disk: /tmp on these machines is several times slower for
    # the worker's per-attempt directories (mkdir ~0.75 ms there against ~25 us here).
    base = ROOT / ".batchyard"
    base.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=base) as tmp:
        scratch = Path(tmp)
        target = f"127.0.0.1:{free_port()}"
        level = os.environ.get("BENCH_SERVER_LOG_LEVEL", "warning")
        env = {**os.environ, "BATCHYARD_LOG_LEVEL": level, "BATCHYARD_LOG_FORMAT": "json"}
        env.pop("DATABASE_URL", None)
        env.pop("BATCHYARD_DATABASE_URL", None)
        cmd = [
            sys.executable,
            "-m",
            "batchyard.server",
            "--listen",
            target,
            "--data-dir",
            str(scratch / "pg"),
            "--pool-size",
            "20",
            *extra,
        ]
        # The first admin token, made the way an operator makes it (before the server
        # starts: both would start the embedded PostgreSQL of the data directory).
        bootstrap = [*cmd[:3], "bootstrap", "--data-dir", str(scratch / "pg")]
        made = subprocess.run(bootstrap, env=env, capture_output=True, text=True, check=True)
        os.environ["BATCHYARD_TOKEN"] = made.stdout.strip()  # the bench's clients and workers
        with (scratch / "server.log").open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            await wait_serving(target, proc, timeout=60)
            yield target, scratch
        finally:
            await stop(proc)
            if os.environ.get("BENCH_KEEP_LOG"):
                (scratch / "server.log").replace(os.environ["BENCH_KEEP_LOG"])


@contextlib.asynccontextmanager
async def bench_worker(
    target: str, scratch: Path, slots: int
) -> AsyncIterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "BATCHYARD_LOG_LEVEL": "warning", "BATCHYARD_LOG_FORMAT": "json"}
    cmd = [
        sys.executable,
        "-m",
        "batchyard.worker",
        "--server",
        target,
        "--slots",
        str(slots),
        "--workspace-root",
        str(scratch),
        "--state-dir",
        str(scratch / "worker"),
    ]
    with (scratch / "worker.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        await stop(proc)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values_ms: list[float]) -> str:
    return (
        f"n={len(values_ms)} p50={percentile(values_ms, 50):.2f} ms "
        f"p99={percentile(values_ms, 99):.2f} ms mean={statistics.fmean(values_ms):.2f} ms"
    )


def run(main: object) -> None:
    asyncio.run(main)  # type: ignore[arg-type]
