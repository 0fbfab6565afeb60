"""Batchyard side by side with pgqueuer, procrastinate, graphile-worker and the floors.

    uv run python -m tests.bench.peers [--quick] [--rounds 3] [--json FILE]

One embedded PostgreSQL for all; a fresh database per system, phase and round. Each round
runs the enqueue phase of every system, then the run phase of every system (the order of
the systems rotates from round to round: A B C, B C A, ...), so that each comparison is
made minutes apart at most on the same server. Prints one table: per measurement the
median over the rounds [min-max], and Batchyard's median divided by each other's.

* single enqueue, 50 in flight and 1 in flight: SubmitRun / enqueue / defer / addJob /
  one-row INSERT, for --seconds;
* batch of --batch: BatchSubmitRuns / list enqueue / batch_defer / addJobs /
  executemany / COPY, --batches of them;
* end to end: --e2e-jobs trivial jobs, --concurrency at once (Batchyard: SHELL `true` runs
  through one worker with that many slots; the peers: a no-op handler and a handler that
  spawns /bin/true; the floor: asyncio spawns of /bin/true), from the first enqueue to
  every job done in the database; with the database commits per job;
* idle start latency, p50 and p99 over --latency-runs: Batchyard's SubmitRun call -> the
  job's process running, as the client sees it (and the database's submit -> start); a
  peer's enqueue -> handler start and -> a process the handler spawns running; the floors
  INSERT + NOTIFY -> listener and a bare spawn -> running.

The peers are installed once into .batchyard/peers (see envs.py; not the project's
dependencies). Never part of the test command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from batchyard.server.embedded import start_embedded
from batchyard.server.log_config import configure_logging
from tests.bench.peers import batchyard_side, envs

ROOT = Path(__file__).resolve().parents[3]
SYSTEMS = ("batchyard", "pgqueuer", "procrastinate", "graphile-worker", "floors")
PHASES = ("enqueue", "run")
DRIVER_TIMEOUT = 900.0


# ---------------------------------------------------------------- what the table shows


@dataclass(frozen=True)
class Row:
    system: str
    metric: str
    label: str


@dataclass(frozen=True)
class Section:
    title: str
    unit: str
    rows: tuple[Row, ...]  # the first is Batchyard's, the reference of the ratios


SECTIONS = (
    Section(
        "single enqueue, {in_flight} in flight",
        "jobs/s",
        (
            Row("batchyard", "single_50", "SubmitRun"),
            Row("pgqueuer", "single_50", "Queries.enqueue"),
            Row("procrastinate", "single_50", "Task.defer_async"),
            Row("graphile-worker", "single_50", "addJob"),
            Row("floors", "single_50", "asyncpg INSERT, pool of {pool}"),
        ),
    ),
    Section(
        "single enqueue, 1 in flight",
        "jobs/s",
        (
            Row("batchyard", "single_1", "SubmitRun"),
            Row("pgqueuer", "single_1", "Queries.enqueue"),
            Row("procrastinate", "single_1", "Task.defer_async"),
            Row("graphile-worker", "single_1", "addJob"),
            Row("floors", "single_1", "asyncpg INSERT, one connection"),
        ),
    ),
    Section(
        "batch enqueue of {batch}",
        "jobs/s",
        (
            Row("batchyard", "batch", "BatchSubmitRuns"),
            Row("pgqueuer", "batch", "Queries.enqueue(lists)"),
            Row("procrastinate", "batch", "Task.batch_defer_async"),
            Row("graphile-worker", "batch", "addJobs"),
            Row("floors", "executemany", "asyncpg executemany"),
            Row("floors", "copy", "asyncpg COPY"),
        ),
    ),
    Section(
        "end to end, {e2e_jobs} trivial jobs, {concurrency} at once",
        "jobs/s",
        (
            Row("batchyard", "e2e", "SHELL `true` runs, 1 worker x {concurrency} slots"),
            Row("pgqueuer", "e2e_spawn", "handler spawns /bin/true"),
            Row("procrastinate", "e2e_spawn", "handler spawns /bin/true"),
            Row("graphile-worker", "e2e_spawn", "handler spawns /bin/true"),
            Row("pgqueuer", "e2e_noop", "no-op handler"),
            Row("procrastinate", "e2e_noop", "no-op handler"),
            Row("graphile-worker", "e2e_noop", "no-op handler"),
            Row("floors", "spawn_c", "asyncio spawn /bin/true, {concurrency} at once"),
            Row("floors", "spawn_1", "asyncio spawn /bin/true, 1 at once"),
        ),
    ),
    Section(
        "commits per job, end to end",
        "commits",
        (
            Row("batchyard", "commits", "submit -> SUCCEEDED"),
            Row("pgqueuer", "commits_spawn", "enqueue -> done (spawn handler)"),
            Row("procrastinate", "commits_spawn", "enqueue -> done (spawn handler)"),
            Row("graphile-worker", "commits_spawn", "enqueue -> done (spawn handler)"),
        ),
    ),
    *(
        Section(
            f"idle enqueue -> start, {p}",
            "ms",
            (
                Row("batchyard", f"lat_client_{p}", "SubmitRun -> job process running"),
                Row("batchyard", f"lat_db_{p}", "(database: submit -> attempt start)"),
                Row("pgqueuer", f"lat_process_{p}", "enqueue -> spawned process running"),
                Row("procrastinate", f"lat_process_{p}", "enqueue -> spawned process running"),
                Row("graphile-worker", f"lat_process_{p}", "enqueue -> spawned process running"),
                Row("pgqueuer", f"lat_handler_{p}", "enqueue -> handler start"),
                Row("procrastinate", f"lat_handler_{p}", "enqueue -> handler start"),
                Row("graphile-worker", f"lat_handler_{p}", "enqueue -> handler start"),
                Row("floors", f"lat_notify_{p}", "INSERT+NOTIFY -> listener"),
                Row("floors", f"lat_spawn_{p}", "spawn sh -> running"),
            ),
        )
        for p in ("p50", "p99")
    ),
)


# ---------------------------------------------------------------- results


@dataclass
class Results:
    params: dict[str, Any]
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)
    order: list[list[str]] = field(default_factory=list)

    def add(self, system: str, metrics: dict[str, float | None]) -> None:
        mine = self.values.setdefault(system, {})
        for name, value in metrics.items():
            if value is not None:
                mine.setdefault(name, []).append(float(value))

    def of(self, row: Row) -> list[float]:
        return self.values.get(row.system, {}).get(row.metric, [])


def fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: Results) -> str:
    """One line per row with values: median [min-max] over the rounds, and Batchyard's
    median (the section's first row) divided by this row's."""
    cells: list[tuple[str, str, str, str, str, str]] = []
    for section in SECTIONS:
        title = f"{section.title.format(**results.params)} ({section.unit})"
        ref = results.of(section.rows[0])
        reference = statistics.median(ref) if ref else None
        for row in section.rows:
            values = results.of(row)
            if not values:
                continue
            median = statistics.median(values)
            spread = f"[{fmt(min(values))}-{fmt(max(values))}]"
            ratio = f"{reference / median:.2f}" if reference is not None and median else "-"
            label = row.label.format(**results.params)
            cells.append((title, row.system, label, fmt(median), spread, ratio))
            title = ""
        cells.append(("", "", "", "", "", ""))
    head = ("measurement (unit)", "system", "what", "median", "[min-max]", "by/this")
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(6)]

    def line(c: tuple[str, str, str, str, str, str]) -> str:
        return (
            f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}  "
            f"{c[3]:>{widths[3]}}  {c[4]:<{widths[4]}}  {c[5]:>{widths[5]}}"
        ).rstrip()

    rule = "-" * (sum(widths) + 10)
    return "\n".join([line(head), rule, *(line(c) for c in cells)])


def footer(results: Results) -> str:
    one = [load[0] for load in results.load]
    rounds = len(results.order)
    text = [
        f"rounds: {rounds}; order per round: "
        + " | ".join(" ".join(order) for order in results.order),
        "load average (1 min) at the start and end of each round: "
        f"median {fmt(statistics.median(one))} [{fmt(min(one))}-{fmt(max(one))}]; "
        f"cores: {os.cpu_count()}",
        "by/this = Batchyard's median / this row's median: for jobs/s above 1 means "
        "Batchyard is faster; for ms and commits above 1 means Batchyard takes more.",
        "versions: " + "; ".join(f"{k}: {v}" for k, v in sorted(results.versions.items())),
        "params: " + ", ".join(f"{k}={v}" for k, v in results.params.items()),
    ]
    return "\n".join(text)


# ---------------------------------------------------------------- one PostgreSQL


class SharedPostgres:
    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        prefix, _, query = admin_dsn.partition("?")
        self._base, self._query = prefix.rsplit("/", 1)[0], query

    def dsn(self, database: str) -> str:
        return f"{self._base}/{database}?{self._query}"

    @contextlib.asynccontextmanager
    async def database(self, name: str) -> AsyncIterator[str]:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        try:
            yield self.dsn(name)
        finally:
            conn = await asyncpg.connect(self.admin_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


@contextlib.asynccontextmanager
async def shared_postgres(base: Path) -> AsyncIterator[SharedPostgres]:
    embedded = await start_embedded(base / "pg")
    try:
        yield SharedPostgres(embedded.admin_dsn)
    finally:
        await embedded.stop()


# ---------------------------------------------------------------- running the systems


async def run_driver(
    driver: envs.Driver, phase: str, dsn: str, params: dict[str, Any], log: Path, cwd: Path
) -> tuple[str, dict[str, float | None]]:
    cmd = [*driver.command, "--phase", phase, "--dsn", dsn, "--params", json.dumps(params)]
    env = {**os.environ, **driver.env}
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=err, cwd=cwd, env=env
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), DRIVER_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:2])} {phase} exited with {proc.returncode}:\n{tail}")
    reply = json.loads(out.decode().strip().splitlines()[-1])
    return str(reply["version"]), reply["metrics"]


def rotated(systems: list[str], by: int) -> list[str]:
    by %= len(systems)
    return systems[by:] + systems[:by]


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    base = ROOT / ".batchyard"
    base.mkdir(exist_ok=True)
    keep = os.environ.get("BENCH_KEEP_LOG")
    path = Path(tempfile.mkdtemp(prefix="bench-peers-", dir=base))
    try:
        yield path
    finally:
        if keep:
            print(f"logs kept in {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


async def measure_one(
    system: str,
    phase: str,
    pg: SharedPostgres,
    name: str,
    work: Path,
    driver: envs.Driver | None,
    results: Results,
) -> None:
    """One system's phase on a fresh database `name`."""
    params = results.params
    async with pg.database(name) as dsn:
        if driver is None:  # Batchyard, driven from this process
            if phase == "enqueue":
                metrics = await batchyard_side.enqueue_phase(dsn, work, params)
            else:
                stats = (pg.admin_dsn, name)
                metrics = await batchyard_side.run_phase(dsn, stats, work, params)
        else:
            version, metrics = await run_driver(
                driver, phase, dsn, params, work / "driver.log", work
            )
            results.versions[system] = version
    results.add(system, metrics)


async def measure(args: argparse.Namespace, params: dict[str, Any]) -> Results:
    systems = list(args.systems)
    drivers: dict[str, envs.Driver] = {}
    started = time.perf_counter()
    for system in systems:
        if system in envs.PYTHON_PEERS:
            drivers[system] = envs.python_peer(system, args.reinstall)
        elif system == "graphile-worker":
            drivers[system] = envs.graphile(args.reinstall)
        elif system == "floors":
            drivers[system] = envs.floors()
    print(f"environments ready in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    results = Results(params)
    results.versions["batchyard"] = "this checkout"
    with scratch_dir() as scratch:
        async with shared_postgres(scratch) as pg:
            for number in range(args.rounds):
                order = rotated(systems, number)
                results.order.append(order)
                results.load.append(os.getloadavg())
                for phase in PHASES:
                    for system in order:
                        print(
                            f"round {number + 1}/{args.rounds}: {system} {phase}", file=sys.stderr
                        )
                        name = f"bench_{system.replace('-', '_')}_{phase}_{number}"
                        work = scratch / name
                        work.mkdir()
                        driver = drivers.get(system)
                        await measure_one(system, phase, pg, name, work, driver, results)
                results.load.append(os.getloadavg())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 small rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; --quick 2)")
    parser.add_argument("--seconds", type=float, default=5, help="per single-enqueue rate")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--e2e-jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32, help="worker slots (C)")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument(
        "--systems",
        type=lambda s: s.split(","),
        default=list(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)}",
    )
    parser.add_argument("--reinstall", action="store_true", help="rebuild the environments")
    parser.add_argument("--json", type=Path, help="also write every value to this file")
    args = parser.parse_args()
    if unknown := set(args.systems) - set(SYSTEMS):
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if args.quick:
        args.seconds, args.batches, args.e2e_jobs, args.latency_runs = 1.0, 3, 300, 20
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    params = {
        "pool": 20,  # the peers' pools, as the server's --pool-size
        "in_flight": 50,
        "seconds": args.seconds,
        "batch": args.batch,
        "batches": args.batches,
        "concurrency": args.concurrency,
        "e2e_jobs": args.e2e_jobs,
        "latency_runs": args.latency_runs,
        "latency_warmup": max(3, args.latency_runs // 10),
    }
    configure_logging("console", "warning")  # the embedded PostgreSQL's start and stop
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = asyncio.run(measure(args, params))
    print(f"\nBatchyard vs peers, {when}, {platform.node()}\n")
    print(table(results))
    print(footer(results))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "date": when,
                    "host": platform.node(),
                    "cores": os.cpu_count(),
                    "load": results.load,
                    "order": results.order,
                    "params": results.params,
                    "versions": results.versions,
                    "values": results.values,
                    "medians": {
                        system: {name: statistics.median(v) for name, v in metrics.items()}
                        for system, metrics in results.values.items()
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
