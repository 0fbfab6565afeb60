"""Cancel latency: from the CancelRun call to SIGTERM delivered to the job, p50/p99, for a
silent job and a chatty one (~10k lines/s), with two server replicas on one PostgreSQL:
the worker talks to the first, the cancel goes to the second (so it crosses replicas
through NOTIFY). Default lease TTL (30 s: the heartbeat comes every 10 s).

    uv run python -m tests.bench.cancel [--trials 20]

The job writes `time.time()` in its SIGTERM handler; the bench takes the time just before
CancelRun (same machine, same clock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from google.protobuf import json_format

from batchyard.client.connection import aio_channel
from batchyard.server.embedded import start_embedded
from batchyard.v1 import definition_pb2, definition_service_pb2_grpc, run_service_pb2_grpc
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_service_pb2 as rpb
from tests import pg
from tests.e2e.test_cancel_push import JOB
from tests.processes import free_port, start_server, stop, wait_serving


@contextlib.asynccontextmanager
async def two_replicas(scratch: Path) -> AsyncIterator[tuple[str, str, str]]:
    """Two servers on one fresh database: (first target, second target, admin token)."""
    embedded = await start_embedded(scratch / "pg")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        name, token = await pg.create_template(embedded.admin_dsn)
        dsn = pg.dsn_for(embedded.admin_dsn, name)
        targets = [f"127.0.0.1:{free_port()}" for _ in range(2)]
        env = {"BATCHYARD_LOG_LEVEL": "warning"}
        for i, target in enumerate(targets):
            args = ("--listen", target, "--database-url", dsn)
            procs.append(start_server(*args, log=scratch / f"server-{i}.log", env=env))
        for target, proc in zip(targets, procs, strict=True):
            await wait_serving(target, proc, timeout=60)
        yield targets[0], targets[1], token
    finally:
        for proc in procs:
            await stop(proc)
        await embedded.stop()


def start_worker(target: str, scratch: Path, token: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BATCHYARD_TOKEN": token, "BATCHYARD_LOG_LEVEL": "warning"}
    cmd = [sys.executable, "-m", "batchyard.worker", "--server", target, "--slots", "2"]
    cmd += ["--workspace-root", str(scratch), "--state-dir", str(scratch / "worker")]
    with (scratch / "worker.log").open("ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


async def until_exists(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        await asyncio.sleep(0.01)


async def trial(first, second, scratch: Path, name: str, n: int) -> float:
    started, term = scratch / f"{name}-{n}.started", scratch / f"{name}-{n}.term"
    env = {"STARTED_FILE": str(started), "TERM_FILE": str(term)}
    env["CHATTY"] = "1" if name == "chatty" else "0"
    request = json_format.ParseDict(
        {"definition": name, "overrides": {"env": env}}, rpb.SubmitRunRequest()
    )
    run = (await first.SubmitRun(request)).run
    await until_exists(started)
    await asyncio.sleep(0.2)  # the worker's waits are in place, as for any running job
    asked = time.time()
    await second.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    await until_exists(term)
    latency = float(term.read_text()) - asked
    while (await second.GetRun(rpb.GetRunRequest(run=run.uuid))).run.status == 2:  # RUNNING
        await asyncio.sleep(0.05)
    return latency


async def define(channel, name: str, chatty: bool) -> None:
    config = {
        "type": "JOB_TYPE_SHELL",
        "sourceLocation": sys.executable,
        "args": ["-c", JOB],
        "env": {"CHATTY": "1" if chatty else "0"},
    }
    definition = json_format.ParseDict(
        {"name": name, "config": config}, definition_pb2.Definition()
    )
    stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    await stub.CreateDefinition(dpb.CreateDefinitionRequest(definition=definition))


async def main(trials: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="bench-cancel-"))
    try:
        async with two_replicas(scratch) as (a, b, token):
            worker = start_worker(a, scratch, token)
            try:
                async with aio_channel(a, token=token) as ca, aio_channel(b, token=token) as cb:
                    first = run_service_pb2_grpc.RunServiceStub(ca)
                    second = run_service_pb2_grpc.RunServiceStub(cb)
                    for name, chatty in (("silent", False), ("chatty", True)):
                        await define(ca, name, chatty)
                        got = [await trial(first, second, scratch, name, n) for n in range(trials)]
                        got.sort()
                        p99 = got[min(len(got) - 1, round(0.99 * (len(got) - 1)))]
                        print(
                            f"{name}: CancelRun -> SIGTERM over {trials} trials: "
                            f"p50 {statistics.median(got) * 1000:.0f} ms, "
                            f"p99 {p99 * 1000:.0f} ms, max {got[-1] * 1000:.0f} ms"
                        )
            finally:
                await stop(worker)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    asyncio.run(main(parser.parse_args().trials))
