"""End to end: trivial SHELL runs (`true`) through one worker process, the database
commits each run costs, and the start latency on an idle system.

    uv run python -m tests.bench.e2e [--runs 3000] [--slots 32] [--latency-runs 200]

* start latency, as a user sees it: from the SubmitRun call to the job's process running
  (the job writes one byte to a FIFO the client reads), p50/p99; and the database's own
  view (the run's submit time to its attempt's start time);
* throughput: runs/s from the first BatchSubmitRuns call to the last run's end time (the
  database writes it with the same clock); every run must end SUCCEEDED, else the bench
  fails;
* commits per run: `xact_commit` of the service's database in `pg_stat_database`, from
  before the first submit to every run done, less the bench's own GetRun polls.

Completion is read with GetRun on the submitted runs (the last one first), never with a
listing whose cost grows with the database's history.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import grpc

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    run_pb2,
    run_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb
from tests.bench.common import bench_server, bench_worker, run, summary

FINISHED = {run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED}
# pg_stat_database lags: a backend flushes its counters at most once a second, and an idle
# one within a second of going idle.
STATS_SETTLE_SECONDS = 1.5

if TYPE_CHECKING:
    RunStub = run_service_pb2_grpc.RunServiceAsyncStub


class RunsFailed(RuntimeError):
    """A run of the bench did not end SUCCEEDED."""


async def define(channel: grpc.aio.Channel, name: str, config: job_pb2.JobConfig) -> None:
    stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    await stub.CreateDefinition(
        definition_service_pb2.CreateDefinitionRequest(
            definition=definition_pb2.Definition(name=name, config=config)
        )
    )


def shell(command: str, *args: str) -> job_pb2.JobConfig:
    return job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location=command, args=args)


# ---------------------------------------------------------------- completion


def _failure(got: run_pb2.Run) -> str:
    return f"{got.uuid} {run_pb2.RunStatus.Name(got.status)} {got.message!r}"


async def wait_finished(stub: RunStub, uuid: str, poll: float = 0.02) -> tuple[run_pb2.Run, int]:
    """GetRun every `poll` seconds until the run has ended: the run and the calls made."""
    calls = 0
    while True:
        calls += 1
        got = (await stub.GetRun(rpb.GetRunRequest(run=uuid))).run
        if got.status in FINISHED:
            return got, calls
        await asyncio.sleep(poll)


async def check_succeeded(stub: RunStub, ids: list[str], in_flight: int = 16) -> float:
    """Wait until every run of `ids` has ended (reading each once, again later only if it
    is still running); raise RunsFailed if any did not succeed. Returns the latest end
    time (epoch seconds)."""
    ends: list[int] = []
    failed: list[str] = []
    rest = list(ids)

    async def sweep() -> None:
        while rest:
            got, _ = await wait_finished(stub, rest.pop())
            ends.append(got.end_time.ToNanoseconds())
            if got.status != run_pb2.RUN_STATUS_SUCCEEDED:
                failed.append(_failure(got))

    await asyncio.gather(*(sweep() for _ in range(in_flight)))
    if failed:
        shown = "; ".join(failed[:5])
        raise RunsFailed(f"{len(failed)} of {len(ids)} runs did not succeed: {shown}")
    return max(ends) / 1e9


# ---------------------------------------------------------------- commits


def embedded_dsn(pg_dir: Path, database: str = "postgres") -> str:
    """The DSN of the embedded PostgreSQL running in `pg_dir` (its socket directory is
    the fifth line of postmaster.pid); by default of the maintenance database, so that
    reading the counters adds no commit to the database measured."""
    socket_dir = (pg_dir / "postmaster.pid").read_text().splitlines()[4].strip()
    return f"postgresql://postgres@/{database}?host={socket_dir}"


async def commits(dsn: str, database: str) -> int:
    """Committed transactions of `database` so far, after the counters settle (`dsn`
    best names another database)."""
    await asyncio.sleep(STATS_SETTLE_SECONDS)
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database
        )
    finally:
        await conn.close()
    return int(value)


async def commits_per_get_run(stub: RunStub, dsn: str, database: str, run_id: str) -> float:
    """What one GetRun call costs in commits, to take the bench's own reads out."""
    before = await commits(dsn, database)
    for _ in range(200):
        await stub.GetRun(rpb.GetRunRequest(run=run_id))
    return (await commits(dsn, database) - before) / 200


# ---------------------------------------------------------------- throughput


@dataclass
class Throughput:
    runs: int
    rate: float  # runs/s, first submit -> last end
    commits_per_run: float | None  # None without a DSN to read the counters from


async def submit_batches(stub: RunStub, total: int, definition: str) -> list[str]:
    ids: list[str] = []
    for start in range(0, total, 1000):
        count = min(1000, total - start)
        request = rpb.BatchSubmitRunsRequest(
            requests=[rpb.SubmitRunRequest(definition=definition)] * count
        )
        reply = await stub.BatchSubmitRuns(request)
        ids.extend(r.run.uuid for r in reply.responses)
    return ids


async def throughput(
    stub: RunStub,
    total: int,
    definition: str = "true",
    stats: tuple[str, str] | None = None,
) -> Throughput:
    """`total` runs of `definition` end to end; `stats` = (DSN, database) to count the
    database's commits with.

    Only the last submitted run is polled until it ends; the worker leases in submission
    order, so the few runs still running then end within milliseconds. The commit
    counter is read after it settles (1.5 s later), then every run is checked: all must
    have ended before the counter settled (else the count is left out) and succeeded."""
    before = await commits(*stats) if stats else 0
    started = time.time()
    ids = await submit_batches(stub, total, definition)
    assert len(ids) == total, f"submitted {len(ids)} of {total}"
    _, calls = await wait_finished(stub, ids[-1])
    settle_from = time.time()
    after = await commits(*stats) if stats else 0
    last_end = await check_succeeded(stub, ids)
    per_run = None
    if stats and last_end < settle_from:
        per_call = await commits_per_get_run(stub, *stats, ids[-1])
        per_run = (after - before - calls * per_call) / total
    return Throughput(total, total / (last_end - started), per_run)


# ---------------------------------------------------------------- start latency


class Fifo:
    """A FIFO jobs write a byte to when they start; the reader keeps a writer end open
    itself, so it never sees end-of-file between jobs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        path.chmod(0o666)  # a job may run as another user
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    async def next_byte(self, timeout: float = 30) -> float:
        """perf_counter() when the next byte arrives."""
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[float] = loop.create_future()

        def ready() -> None:
            with contextlib.suppress(BlockingIOError):
                if os.read(self._read, 1) and not arrived.done():
                    arrived.set_result(time.perf_counter())

        loop.add_reader(self._read, ready)
        try:
            return await asyncio.wait_for(arrived, timeout)
        finally:
            loop.remove_reader(self._read)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._keep)
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def start_fifo(scratch: Path) -> Iterator[Fifo]:
    fifo = Fifo(scratch / "started.fifo")
    try:
        yield fifo
    finally:
        fifo.close()


def probe_config(fifo: Fifo) -> job_pb2.JobConfig:
    """A job that tells the client it runs: one byte into the FIFO."""
    return shell("sh", "-c", 'printf x > "$0"', str(fifo.path))


async def start_latency(
    stub: RunStub, fifo: Fifo, count: int, definition: str = "probe"
) -> tuple[list[float], list[float]]:
    """`count` runs one at a time on an idle system: (SubmitRun call -> the job's process
    running, seen by the client; submit_time -> attempt start_time, seen by the database),
    in ms. Each run must succeed."""
    client, database = [], []
    for _ in range(count):
        fifo.drain()
        started = time.perf_counter()
        submitted = (await stub.SubmitRun(rpb.SubmitRunRequest(definition=definition))).run
        client.append((await fifo.next_byte() - started) * 1e3)
        got, _ = await wait_finished(stub, submitted.uuid, poll=0.005)
        if got.status != run_pb2.RUN_STATUS_SUCCEEDED:
            raise RunsFailed(f"a probe run did not succeed: {_failure(got)}")
        begun = got.attempts[0].start_time.ToNanoseconds()
        database.append((begun - got.submit_time.ToNanoseconds()) / 1e6)
        await asyncio.sleep(0.02)  # idle between runs
    return client, database


async def main(args: argparse.Namespace) -> None:
    async with (
        bench_server() as (target, scratch),
        bench_worker(target, scratch, args.slots),
        aio_channel(target) as channel,
    ):
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        await define(channel, "true", shell("true"))
        with start_fifo(scratch) as fifo:
            await define(channel, "probe", probe_config(fifo))
            await start_latency(stub, fifo, 20)  # warm-up
            client, database = await start_latency(stub, fifo, args.latency_runs)
        print(f"SubmitRun -> job process running (client), idle: {summary(client)}")
        print(f"submit_time -> attempt start (database), idle: {summary(database)}")
        stats = (embedded_dsn(scratch / "pg"), "batchyard")
        result = await throughput(stub, args.runs, stats=stats)
        print(f"trivial runs end to end, 1 worker x {args.slots} slots: {result.rate:,.0f} runs/s")
        per_run = result.commits_per_run
        shown = "n/a (a run ended after the reading)" if per_run is None else f"{per_run:.2f}"
        print(f"database commits per run (submit -> done): {shown}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--latency-runs", type=int, default=200)
    run(main(parser.parse_args()))
