"""Benchmark: INGEST vs `psql \\copy` of the same CSV files, and the memory of a big file.

    uv run python -m tests.bench.ingest [--files 20] [--rows 2000000] [--big-mib 1024]

Starts an embedded PostgreSQL and a moto S3 server (its own process), writes FILES CSV
files of ROWS rows in all (id, name, amount, score, seen) to a local directory and to
S3, then, side by side in one run: `psql \\copy` of every file from local disk, one after
the other in one session (the floor), and an INGEST attempt of the prefix as the worker
runs it (the ingest runner subprocess, input_concurrency 2). Prints rows/s and MB/s of
each and their ratio. With --big-mib, also loads one CSV file of about that size and
prints the peak RSS of the runner and the growth of this (worker) process; and how long a
cancel mid-file takes from SIGTERM to the runner's exit. The moto server runs on the same
cores as everything else (real S3 would not), so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg

from batchyard.server.embedded import start_embedded
from batchyard.v1 import job_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.reaper.client import Reaper
from tests.processes import free_port
from tests.s3 import AWS_TEST_ENV
from tests.worker.ingest_fixtures import ingest_job

PSQL = "/usr/bin/psql"
COLUMNS = "id bigint, name text, amount int, score float8, seen timestamptz"


def write_csv(path: Path, start: int, rows: int, pad: int = 0) -> int:
    rnd = random.Random(start)
    filler = "x" * pad
    with path.open("w") as out:
        out.write("id,name,amount,score,seen\n")
        for i in range(start, start + rows):
            out.write(
                f"{i},name-{i}{filler},{rnd.randint(0, 10**6)},{rnd.random():.6f},"
                f"2024-0{1 + i % 9}-1{i % 10}T12:34:56Z\n"
            )
    return path.stat().st_size


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    import boto3  # type: ignore[import-untyped]

    client = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    for _ in range(100):
        try:
            client.list_buckets()
            return proc, endpoint
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class RunnerWatch:
    """Samples the ingest runner's peak RSS while it lives."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    if b"batchyard.worker.ingest_runner" in argv:
                        self.peak = max(self.peak, peak_rss_kib(int(entry.name)))
                except OSError:
                    continue
            time.sleep(0.2)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


async def ingest(config: job_pb2.JobConfig, dsn: str, state: Path) -> tuple[float, Any]:
    options = ExecutionOptions(
        state_dir=state,
        workspace_root=state,
        python=sys.executable,
        job_path=os.environ.get("PATH") or os.defpath,
        sql_targets={"target": dsn},
    )
    reaper = Reaper.start()
    try:
        started = time.perf_counter()
        async with Execution(AttemptSpec("bench", 1, config), options, reaper=reaper) as ex:
            outcome = await ex.run()
        return time.perf_counter() - started, outcome
    finally:
        reaper.close()


def psql_copy(dsn: str, table: str, files: list[Path]) -> float:
    script = "".join(f"\\copy {table} FROM '{f}' WITH (FORMAT csv, HEADER true)\n" for f in files)
    started = time.perf_counter()
    subprocess.run(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn], input=script.encode(), check=True
    )
    return time.perf_counter() - started


def line(what: str, rows: int, size: int, seconds: float) -> str:
    return (
        f"{what:<28} {rows:>9} rows {size / 1e6:>8.1f} MB {seconds:>7.2f} s "
        f"{rows / seconds:>10.0f} rows/s {size / 1e6 / seconds:>7.1f} MB/s"
    )


async def main(args: argparse.Namespace) -> None:
    os.environ.update(AWS_TEST_ENV)
    base = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    embedded = await start_embedded(base / "pg")
    moto, endpoint = start_moto()
    try:
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench")
        dsn = embedded.admin_dsn
        conn = await asyncpg.connect(dsn)
        per_file = args.rows // args.files
        files, size = [], 0
        for i in range(args.files):
            path = base / f"part-{i:03}.csv"
            size += write_csv(path, i * per_file, per_file)
            s3.upload_file(str(path), "bench", f"in/{path.name}")
            files.append(path)
        rows = per_file * args.files
        await conn.execute(f"CREATE TABLE floor ({COLUMNS}); CREATE TABLE loaded ({COLUMNS})")
        print(f"load average before: {os.getloadavg()}")
        floor = psql_copy(dsn, "floor", files)
        config = ingest_job("s3://bench/in/", endpoint, "loaded", concurrency=2)
        took, outcome = await ingest(config, dsn, base / "state")
        assert outcome.status == 3, outcome.message
        assert await conn.fetchval("SELECT count(*) FROM loaded") == rows
        print(line("psql \\copy (local files)", rows, size, floor))
        print(line("batchyard ingest (conc. 2)", rows, size, took))
        print(f"ratio ingest/psql: {floor / took:.2f}x; load average after: {os.getloadavg()}")
        await stop_latency(endpoint, dsn, conn, base / "state3")
        if args.big_mib:
            await big_file(args.big_mib, base, s3, endpoint, dsn, conn)
        await conn.close()
    finally:
        moto.terminate()
        moto.wait()
        await embedded.stop()


async def stop_latency(endpoint: str, dsn: str, conn: Any, state: Path) -> None:
    """How long a cancel takes from the worker's SIGTERM to the runner's exit, mid-file."""
    from batchyard.worker.outcome import StopReason

    await conn.execute(f"CREATE TABLE stopped ({COLUMNS})")
    config = ingest_job("s3://bench/in/", endpoint, "stopped", concurrency=2)
    options = ExecutionOptions(
        state_dir=state,
        workspace_root=state,
        python=sys.executable,
        job_path=os.environ.get("PATH") or os.defpath,
        sql_targets={"target": dsn},
        kill_grace=30.0,
    )
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
        "'batchyard-ingest-job' AND state = 'active' AND query LIKE 'COPY%'"
    )
    async with Execution(AttemptSpec("stop", 1, config), options) as execution:
        task = asyncio.create_task(execution.run())
        while not await conn.fetchval(query):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        execution.stop(StopReason.CANCEL)
        outcome = await task
        took = time.perf_counter() - started
    print(f"cancel mid-file: the runner exited {took:.2f} s after SIGTERM ({outcome.message})")


async def big_file(mib: int, base: Path, s3: Any, endpoint: str, dsn: str, conn: Any) -> None:
    path = base / "big.csv"
    rows = mib * 1024 * 1024 // 500
    size = write_csv(path, 0, rows, pad=420)
    s3.upload_file(str(path), "bench", "big/big.csv")
    path.unlink()
    await conn.execute(f"CREATE TABLE big ({COLUMNS})")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    watch = RunnerWatch()
    took, outcome = await ingest(
        ingest_job("s3://bench/big/", endpoint, "big"), dsn, base / "state2"
    )
    runner_peak = watch.stop()
    assert outcome.status == 3, outcome.message
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(line("batchyard ingest, one file", rows, size, took))
    print(
        f"one {size / 2**20:.0f} MiB file: runner peak RSS {runner_peak / 1024:.0f} MiB; "
        f"worker (this process) peak RSS {after / 1024:.0f} MiB, grew "
        f"{(after - before) / 1024:.0f} MiB; load average {os.getloadavg()}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--big-mib", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
