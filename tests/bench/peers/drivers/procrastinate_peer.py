"""procrastinate through its public API (Task.defer_async, batch_defer_async,
App.run_worker_async): run by the throwaway environment's interpreter. See peer_common for
the calling convention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import procrastinate
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

logging.getLogger("procrastinate").setLevel(logging.WARNING)


def make_app(dsn: str, pool: int) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=dsn, min_size=2, max_size=pool)
    return procrastinate.App(connector=connector)


async def enqueue_phase(dsn: str, p: dict[str, Any]) -> dict[str, float | None]:
    app = make_app(dsn, p["pool"])

    # Nobody works the "nobody" queue: the jobs only pile up, as Batchyard's go to a
    # queue no worker serves.
    @app.task(name="bench", queue="nobody")
    async def bench() -> None:
        pass

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        size = p["batch"]
        one = lambda: bench.defer_async()  # noqa: E731
        many = lambda: bench.batch_defer_async(*([{}] * size))  # noqa: E731
        await timed_loop(one, 1, p["in_flight"])  # warm-up
        return {
            "single_50": await timed_loop(one, p["seconds"], p["in_flight"]),
            "single_1": await timed_loop(one, p["seconds"], 1),
            "batch": await timed_batches(many, size, p["batches"]),
        }


async def run_phase(dsn: str, p: dict[str, Any]) -> dict[str, float | None]:
    app = make_app(dsn, p["pool"])
    counter = Counter()
    probes: asyncio.Queue[tuple[float, float]] = asyncio.Queue()

    @app.task(name="noop", queue="work")
    async def noop() -> None:
        counter.add()

    @app.task(name="spawn", queue="work")
    async def spawn() -> None:
        await spawn_true()
        counter.add()

    @app.task(name="probe", queue="work")
    async def probe() -> None:
        entered = time.perf_counter()
        probes.put_nowait((entered, await spawn_signal()))

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        connector = app.connector

        async def settled() -> bool:
            left = await connector.execute_query_one_async(
                "SELECT count(*) AS n FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
            )
            return bool(left["n"] == 0)

        async def commits() -> int:
            await asyncio.sleep(STATS_SETTLE_SECONDS)
            row = await connector.execute_query_one_async(
                "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()"
            )
            return int(row["n"])

        async def e2e(task: Any, total: int) -> float:
            counter.expect(total)
            started = time.perf_counter()
            for first in range(0, total, 1000):
                await task.batch_defer_async(*([{}] * min(1000, total - first)))
            await asyncio.wait_for(counter.reached.wait(), 300)
            await until(settled, 60)
            return total / (time.perf_counter() - started)

        worker = asyncio.create_task(
            app.run_worker_async(
                queues=["work"],
                concurrency=p["concurrency"],
                wait=True,
                install_signal_handlers=False,
            )
        )
        await asyncio.sleep(0.5)
        handler_ms, process_ms = [], []
        for i in range(p["latency_warmup"] + p["latency_runs"]):
            started = time.perf_counter()
            await probe.defer_async()
            entered, seen = await asyncio.wait_for(probes.get(), 30)
            if i >= p["latency_warmup"]:
                handler_ms.append((entered - started) * 1e3)
                process_ms.append((seen - started) * 1e3)
            await asyncio.sleep(0.02)  # idle between jobs
        await until(settled, 60)
        metrics: dict[str, float | None] = {
            **latency_metrics("lat_handler", handler_ms),
            **latency_metrics("lat_process", process_ms),
            "e2e_noop": await e2e(noop, p["e2e_jobs"]),
        }
        before = await commits()
        metrics["e2e_spawn"] = await e2e(spawn, p["e2e_jobs"])
        metrics["commits_spawn"] = (await commits() - before) / p["e2e_jobs"]
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(worker, 30)
        return metrics


async def main() -> None:
    phase, dsn, params = arguments()
    measure = enqueue_phase if phase == "enqueue" else run_phase
    emit(f"procrastinate {procrastinate.__version__}", await measure(dsn, params))


if __name__ == "__main__":
    asyncio.run(main())
