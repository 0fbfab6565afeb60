"""The floors: what PostgreSQL and the operating system do with no job system in between.
Run by the project's interpreter (asyncpg only). See peer_common for the calling
convention.

* enqueue: one-row INSERT (50 in flight on a pool, and one at a time on one connection),
  `executemany` and COPY of 1,000 rows, into a minimal jobs table;
* run: asyncio spawns of /bin/true with pipes (as many in flight as the job systems'
  concurrency, and one at a time); idle latency of INSERT + NOTIFY in one transaction to a
  listener on another connection, and of spawning `sh -c 'printf x'` to its first byte.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from peer_common import (
    arguments,
    emit,
    latency_metrics,
    spawn_signal,
    spawn_true,
    timed_batches,
    timed_loop,
)

TABLE = """
CREATE TABLE jobs (
    id bigserial PRIMARY KEY,
    queue text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'PENDING',
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = "INSERT INTO jobs (queue, payload) VALUES ($1, $2)"


async def enqueue_phase(dsn: str, p: dict[str, Any]) -> dict[str, float | None]:
    async with asyncpg.create_pool(dsn, min_size=p["pool"], max_size=p["pool"]) as pool:
        await pool.execute(TABLE)
        size = p["batch"]
        rows = [("bench", "{}")] * size

        async def one() -> None:
            await pool.execute(INSERT, "bench", "{}")

        async with pool.acquire() as conn:

            async def one_conn() -> None:
                await conn.execute(INSERT, "bench", "{}")

            async def many() -> None:
                await conn.executemany(INSERT, rows)

            async def copy() -> None:
                await conn.copy_records_to_table("jobs", records=rows, columns=["queue", "payload"])

            await timed_loop(one, 1, p["in_flight"])  # warm-up
            return {
                "single_50": await timed_loop(one, p["seconds"], p["in_flight"]),
                "single_1": await timed_loop(one_conn, p["seconds"], 1),
                "executemany": await timed_batches(many, size, p["batches"]),
                "copy": await timed_batches(copy, size, p["batches"]),
            }


async def spawn_rate(total: int, in_flight: int) -> float:
    left = total

    async def loop() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await spawn_true()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return total / (time.perf_counter() - started)


async def run_phase(dsn: str, p: dict[str, Any]) -> dict[str, float | None]:
    listener = await asyncpg.connect(dsn)
    sender = await asyncpg.connect(dsn)
    try:
        await sender.execute(TABLE)
        heard: asyncio.Queue[float] = asyncio.Queue()
        await listener.add_listener("jobs", lambda *_: heard.put_nowait(time.perf_counter()))
        notify_ms, spawn_ms = [], []
        for i in range(p["latency_warmup"] + p["latency_runs"]):
            started = time.perf_counter()
            async with sender.transaction():
                await sender.execute(INSERT, "work", "{}")
                await sender.execute("SELECT pg_notify('jobs', '')")
            arrived = await asyncio.wait_for(heard.get(), 30)
            spawn_started = time.perf_counter()
            seen = await spawn_signal()
            if i >= p["latency_warmup"]:
                notify_ms.append((arrived - started) * 1e3)
                spawn_ms.append((seen - spawn_started) * 1e3)
            await asyncio.sleep(0.02)  # idle between jobs
        return {
            **latency_metrics("lat_notify", notify_ms),
            **latency_metrics("lat_spawn", spawn_ms),
            "spawn_c": await spawn_rate(p["e2e_jobs"], p["concurrency"]),
            "spawn_1": await spawn_rate(p["e2e_jobs"], 1),
        }
    finally:
        await listener.close()
        await sender.close()


async def main() -> None:
    phase, dsn, params = arguments()
    measure = enqueue_phase if phase == "enqueue" else run_phase
    emit(f"asyncpg {asyncpg.__version__}", await measure(dsn, params))


if __name__ == "__main__":
    asyncio.run(main())
