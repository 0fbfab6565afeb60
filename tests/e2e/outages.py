"""A small fleet for outage tests and the outage benchmark: a server subprocess on a
database of its own choosing, real worker subprocesses, long shell jobs without retries,
and what happened to them (killed? retried?) read back over the API.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from batchyard.client.connection import aio_channel
from batchyard.v1 import definition_service_pb2_grpc, run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e.jobs import FINISHED, define, submit
from tests.processes import free_port, start_server, stop, wait_serving


@dataclass
class Fleet:
    """One server (restartable) and its workers, all subprocesses."""

    tmp: Path
    database_url: str
    ttl: float | None = None
    """--lease-ttl (None: the server's default)."""
    rescue_interval: float = 0.2
    max_outage: float | None = None
    token: str | None = None
    target: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _server_args(self) -> list[str]:
        args = ["--listen", self.target, "--database-url", self.database_url, "--grace", "1"]
        args += ["--rescue-interval", str(self.rescue_interval)]
        if self.ttl is not None:
            args += ["--lease-ttl", str(self.ttl)]
        if self.max_outage is not None:
            args += ["--max-outage", str(self.max_outage)]
        return args

    def _env(self) -> dict[str, str]:
        return {"BATCHYARD_TOKEN": self.token} if self.token else {}

    async def start_server(self) -> None:
        self.server = start_server(
            *self._server_args(), log=self.tmp / "server.log", env=self._env()
        )
        await wait_serving(self.target, self.server, timeout=60)

    async def stop_server(self, sig: int = signal.SIGTERM) -> None:
        assert self.server is not None
        await stop(self.server, sig)
        self.server = None

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        index = len(self.workers)
        env = {**os.environ, "BATCHYARD_LOG_FORMAT": "json", **self._env()}
        cmd = [
            sys.executable,
            "-m",
            "batchyard.worker",
            "--server",
            self.target,
            "--workspace-root",
            str(self.tmp),
            "--state-dir",
            str(self.tmp / f"state-{index}"),
            "--worker-id",
            f"w{index}",
            "--kill-grace",
            "1",
            *args,
        ]
        with (self.tmp / f"worker-{index}.log").open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.workers.append(proc)
        return proc

    def channel(self) -> grpc.aio.Channel:
        return aio_channel(self.target, token=self.token)

    async def submit_sleepers(
        self, count: int, seconds: float, name: str = "sleeper", infra_retries: int = 0
    ) -> list[str]:
        """`count` runs of `sleep` that print a line a second, without retries of the job's
        own (and `infra_retries` for a lost worker)."""
        script = f"for i in $(seq {int(seconds)}); do echo line $i; sleep 1; done"
        config = {
            "type": "JOB_TYPE_SHELL",
            "sourceLocation": "/bin/sh",
            "args": ["-c", script],
            "retryStrategy": {"numRetries": 0, "numInfraRetries": infra_retries},
        }
        async with self.channel() as channel:
            await define(definition_service_pb2_grpc.DefinitionServiceStub(channel), name, config)
            runs = run_service_pb2_grpc.RunServiceStub(channel)
            return [(await submit(runs, name)).uuid for _ in range(count)]

    async def runs(self, ids: list[str]) -> list[run_pb2.Run]:
        async with self.channel() as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            return [(await stub.GetRun(rpb.GetRunRequest(run=i), timeout=10)).run for i in ids]

    async def wait_all(
        self, ids: list[str], done: Callable[[run_pb2.Run], bool], timeout: float
    ) -> list[run_pb2.Run]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            got = await self.runs(ids)
            if all(done(r) for r in got):
                return got
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError([run_pb2.RunStatus.Name(r.status) for r in got])
            await asyncio.sleep(0.2)

    async def wait_running(self, ids: list[str], timeout: float = 60) -> list[run_pb2.Run]:
        return await self.wait_all(ids, lambda r: r.status == run_pb2.RUN_STATUS_RUNNING, timeout)

    async def wait_finished(self, ids: list[str], timeout: float) -> list[run_pb2.Run]:
        return await self.wait_all(ids, lambda r: r.status in FINISHED, timeout)

    async def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        if self.server is not None and self.server.poll() is None:
            await stop(self.server)


@dataclass(frozen=True)
class Toll:
    """What an outage cost the runs."""

    runs: int
    killed: int
    """Runs that did not succeed, or had an attempt end other than by its worker."""
    retries: int
    """Attempts beyond the first, of any budget."""

    def __str__(self) -> str:
        return f"{self.runs} runs: {self.killed} killed, {self.retries} retries spent"


def toll(runs: list[run_pb2.Run]) -> Toll:
    killed = sum(
        r.status != run_pb2.RUN_STATUS_SUCCEEDED
        or any(a.reason == run_pb2.RUN_REASON_WORKER_LOST for a in r.attempts)
        for r in runs
    )
    return Toll(len(runs), killed, sum(max(0, len(r.attempts) - 1) for r in runs))


class CutProxy:
    """A TCP proxy on loopback between a worker and its server that can cut the worker off:
    while cut, bytes in both directions are dropped (the worker's calls get no answer at
    all, as behind a dead network link); healing closes the cut connections."""

    def __init__(self, target: str) -> None:
        self._host, port = target.rsplit(":", 1)
        self._port = int(port)
        self.cut = False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.address = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{port}"
        return self.address

    def heal(self) -> None:
        self.cut = False
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def close(self) -> None:
        self.heal()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not self.cut:
                writer.write(data)
                await writer.drain()
