"""Start Batchyard processes the way users do, and wait for them over gRPC."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from batchyard.client.connection import aio_channel
from tests.keys import TEST_KEYS_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    *args: str, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`python -m batchyard.server ARGS` with its log in `log`."""
    full_env = {**os.environ, "BATCHYARD_LOG_FORMAT": "json", **TEST_KEYS_ENV, **(env or {})}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "batchyard.server", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )


def bootstrap_token(*args: str, env: dict[str, str] | None = None) -> str:
    """`python -m batchyard.server bootstrap ARGS`: the admin token it prints once."""
    full_env = {**os.environ, "BATCHYARD_LOG_FORMAT": "json", **TEST_KEYS_ENV, **(env or {})}
    made = subprocess.run(
        [sys.executable, "-m", "batchyard.server", "bootstrap", *args],
        env=full_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return made.stdout.strip()


async def wait_serving(target: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Poll gRPC health until SERVING; fail early if the process died."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aio_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before serving")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{target} did not become healthy in {timeout}s")
            await asyncio.sleep(0.1)


async def wait_for_log_events(
    log: Path, event: str, proc: subprocess.Popen[bytes], count: int = 1, timeout: float = 30
) -> list[dict[str, object]]:
    """The first `count` JSON lines of `event` in a process's log, once it has written them;
    fail early if the process died."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = [
            json.loads(line)
            for line in text.splitlines()
            if line.startswith("{") and f'"{event}"' in line
        ]
        if len(found) >= count:
            return found[:count]
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{text}")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{count} {event} not in {log} in {timeout}s:\n{text}")
        await asyncio.sleep(0.05)


async def stop(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30
) -> int:
    """Signal the process and wait for it; kill it if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise
