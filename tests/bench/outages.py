"""On demand: what outages of the service cost running jobs, at the DEFAULT lease TTL
(30 s) and --max-outage (5 min). For each outage length and kind — the server killed and
started again after the outage (`server`), or its PostgreSQL stopped and started again
(`database`) — six long jobs without retries run on two workers; the figures are jobs
killed and retries spent (goal: 0 and 0).

    uv run python -m tests.bench.outages --outages 20,60,240 --kinds server,database

Each scenario runs a fresh PostgreSQL, server and workers; it takes about the outage plus
a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from batchyard.server.embedded import start_embedded
from tests import pg
from tests.e2e.outages import Fleet, Toll, toll

JOBS = 6
AFTER = 30.0
"""Seconds each job runs on after the outage ends."""


async def scenario(kind: str, outage: float, scratch: Path) -> tuple[Toll, float]:
    """One outage of `kind` lasting `outage` seconds; its toll and the wall time."""
    data = scratch / "pg"
    server = await start_embedded(data)
    name, token = await pg.create_template(server.admin_dsn)
    fleet = Fleet(scratch, pg.dsn_for(server.admin_dsn, name), token=token, rescue_interval=2.0)
    started = time.monotonic()
    try:
        await fleet.start_server()
        fleet.start_worker("--slots", "3")
        fleet.start_worker("--slots", "3")
        ids = await fleet.submit_sleepers(JOBS, outage + AFTER + 15)
        await fleet.wait_running(ids)
        await asyncio.sleep(5)  # a heartbeat or two first
        if kind == "server":
            await fleet.stop_server(signal.SIGKILL)
            await asyncio.sleep(outage)
            await fleet.start_server()
        else:
            await server.stop()
            await asyncio.sleep(outage)
            server = await start_embedded(data)
        done = await fleet.wait_finished(ids, timeout=outage + AFTER + 180)
    finally:
        await fleet.close()
        await server.stop()
    return toll(done), time.monotonic() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outages", default="20,60", help="outage lengths in seconds")
    parser.add_argument("--kinds", default="server,database", help="server,database")
    args = parser.parse_args()
    for outage in [float(x) for x in args.outages.split(",")]:
        for kind in args.kinds.split(","):
            scratch = Path(tempfile.mkdtemp(prefix="batchyard-outage-bench-"))
            try:
                got, wall = await scenario(kind, outage, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            load = os.getloadavg()[0]
            print(
                f"{kind:8} outage {outage:5.0f} s (ttl 30 s, max-outage 300 s): {got}"
                f"  [{wall:.0f} s, load {load:.1f}]",
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
