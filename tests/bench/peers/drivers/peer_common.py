"""Helpers shared by the Python drivers (plain scripts: each peer's own interpreter runs
them, so only the standard library here).

Every driver is called as `DRIVER --phase enqueue|run --dsn URL --params JSON` against a
fresh database and prints one JSON object on stdout: {"version": ..., "metrics": {...}}.
Rates are jobs/s, latencies ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

# pg_stat_database lags: a backend flushes its counters at most once a second, and an idle
# one within a second of going idle.
STATS_SETTLE_SECONDS = 1.5


def arguments() -> tuple[str, str, dict[str, Any]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--phase", choices=("enqueue", "run"), required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--params", required=True, help="JSON: sizes of the measurements")
    args = parser.parse_args()
    return args.phase, args.dsn, json.loads(args.params)


def emit(version: str, metrics: dict[str, float | None]) -> None:
    json.dump({"version": version, "metrics": metrics}, sys.stdout)
    sys.stdout.write("\n")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


async def timed_loop(
    call: Callable[[], Awaitable[object]], seconds: float, in_flight: int
) -> float:
    """Calls/s of `call` with `in_flight` callers for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return done / (time.perf_counter() - started)


async def timed_batches(call: Callable[[], Awaitable[object]], size: int, batches: int) -> float:
    """Jobs/s of `batches` calls of `call` (each enqueues `size` jobs), one at a time."""
    await call()  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        await call()
    return size * batches / (time.perf_counter() - started)


async def spawn_true() -> None:
    """What a handler that runs a trivial program does: /bin/true with pipes."""
    proc = await asyncio.create_subprocess_exec(
        "/bin/true", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"/bin/true exited with {proc.returncode}")


async def spawn_signal() -> float:
    """Start `sh -c 'printf x'` and return perf_counter() when its first byte arrives:
    the moment a started process is seen running."""
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", "printf x", stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    await proc.stdout.read(1)
    seen = time.perf_counter()
    await proc.wait()
    return seen


def latency_metrics(prefix: str, values_ms: list[float]) -> dict[str, float | None]:
    return {f"{prefix}_p50": percentile(values_ms, 50), f"{prefix}_p99": percentile(values_ms, 99)}


async def until(check: Callable[[], Awaitable[bool]], timeout: float, poll: float = 0.01) -> None:
    deadline = time.perf_counter() + timeout
    while not await check():
        if time.perf_counter() > deadline:
            raise TimeoutError("the peer did not finish in time")
        await asyncio.sleep(poll)


class Counter:
    """Handler calls, and an event when `target` of them have ended."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.reached = asyncio.Event()

    def expect(self, target: int) -> None:
        self.count, self.target = 0, target
        self.reached.clear()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.reached.set()
