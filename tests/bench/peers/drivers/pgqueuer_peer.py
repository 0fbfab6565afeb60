"""pgqueuer through its public API (Queries.enqueue, QueueManager): run by the throwaway
environment's interpreter. See peer_common for the calling convention."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pgqueuer
from peer_common import (
    STATS_SETTLE_SECONDS,
    Counter,
    arguments,
    emit,
    latency_metrics,
    spawn_signal,
    spawn_true,
    timed_batches,
    timed_loop,
    until,
)
from pgqueuer import AsyncpgDriver, AsyncpgPoolDriver, Queries, QueueManager


async def enqueue_phase(dsn: str, p: dict[str, Any]) -> dict[str, float | None]:
    async with asyncpg.create_pool(dsn, min_size=p["pool"], max_size=p["pool"]) as pool:
        queries = Queries(AsyncpgPoolDriver(pool))
        await queries.install()
        size = p["batch"]
        # Nobody consumes "bench": the jobs only pile up, as Batchyard's go to a queue
        # no worker serves.
        one = lambda: queries.enqueue("bench", None)  # noqa: E731
        many = lambda: queries.enqueue(["bench"] * size, [None] * size, [0] * size)  # noqa: E731
        await timed_loop(one, 1, p["in_flight"])  # warm-up
        return {
            "single_50": await timed_loop(one, p["seconds"], p["in_flight"]),
            "single_1": await timed_loop(one, p["seconds"], 1),
            "batch": await timed_batches(many, size, p["batches"]),
        }


async def run_phase(dsn: str, p: dict[str, Any]) -> dict[str, float | None]:
    consumer = await asyncpg.connect(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=p["pool"])
    try:
        await Queries(AsyncpgDriver(consumer)).install()
        producer = Queries(AsyncpgPoolDriver(pool))
        qm = QueueManager(Queries(AsyncpgDriver(consumer)))
        counter = Counter()
        probes: asyncio.Queue[tuple[float, float]] = asyncio.Queue()

        @qm.entrypoint("noop")
        async def noop(job: pgqueuer.Job) -> None:
            counter.add()

        @qm.entrypoint("spawn")
        async def spawn(job: pgqueuer.Job) -> None:
            await spawn_true()
            counter.add()

        @qm.entrypoint("probe")
        async def probe(job: pgqueuer.Job) -> None:
            entered = time.perf_counter()
            probes.put_nowait((entered, await spawn_signal()))

        async def settled() -> bool:
            return await pool.fetchval("SELECT count(*) FROM pgqueuer") == 0

        async def commits() -> int:
            await asyncio.sleep(STATS_SETTLE_SECONDS)
            return int(
                await pool.fetchval(
                    "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                )
            )

        async def e2e(entrypoint: str, total: int) -> float:
            counter.expect(total)
            started = time.perf_counter()
            for first in range(0, total, 1000):
                n = min(1000, total - first)
                await producer.enqueue([entrypoint] * n, [None] * n, [0] * n)
            await asyncio.wait_for(counter.reached.wait(), 300)
            await until(settled, 60)
            return total / (time.perf_counter() - started)

        worker = asyncio.create_task(qm.run(batch_size=10, max_concurrent_tasks=p["concurrency"]))
        await asyncio.sleep(0.5)
        handler_ms, process_ms = [], []
        for i in range(p["latency_warmup"] + p["latency_runs"]):
            started = time.perf_counter()
            await producer.enqueue("probe", None)
            entered, seen = await asyncio.wait_for(probes.get(), 30)
            if i >= p["latency_warmup"]:
                handler_ms.append((entered - started) * 1e3)
                process_ms.append((seen - started) * 1e3)
            await asyncio.sleep(0.02)  # idle between jobs
        await until(settled, 60)
        metrics: dict[str, float | None] = {
            **latency_metrics("lat_handler", handler_ms),
            **latency_metrics("lat_process", process_ms),
            "e2e_noop": await e2e("noop", p["e2e_jobs"]),
        }
        before = await commits()
        metrics["e2e_spawn"] = await e2e("spawn", p["e2e_jobs"])
        metrics["commits_spawn"] = (await commits() - before) / p["e2e_jobs"]
        qm.shutdown.set()
        await asyncio.wait_for(worker, 30)
        return metrics
    finally:
        await pool.close()
        await consumer.close()


async def main() -> None:
    phase, dsn, params = arguments()
    measure = enqueue_phase if phase == "enqueue" else run_phase
    emit(f"pgqueuer {pgqueuer.__version__}", await measure(dsn, params))


if __name__ == "__main__":
    asyncio.run(main())
