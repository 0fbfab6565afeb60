"""The HTTP face: SubmitRun over HTTP/JSON (Connect) against gRPC, 50 in flight, same run;
then the server's memory with N browser-style fetch streams following logs (TailLogs of a
run that waits in a queue no worker serves, so every stream stays open).

uv run python -m tests.bench.http [--seconds 10] [--streams 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time

import aiohttp
import grpc
import psutil

from tests.bench.common import bench_server, run
from tests.bench.submit import AUTH, prepare, single
from tests.processes import free_port


async def http_single(session: aiohttp.ClientSession, base: str, seconds: float, n: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    headers = {"content-type": "application/json", AUTH[0][0]: AUTH[0][1]}
    body = json.dumps({"definition": "bench"})

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with session.post(
                f"{base}/batchyard.v1.RunService/SubmitRun", data=body, headers=headers
            ) as response:
                assert response.status == 200, await response.text()
                await response.read()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(n)))
    return done / (time.perf_counter() - started)


def server_process(port: int) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        if any(f"127.0.0.1:{port}" == arg for arg in proc.info["cmdline"] or []):
            return proc
    raise RuntimeError("no server process")


async def follow(session: aiohttp.ClientSession, base: str, run_id: str, opened: asyncio.Event):
    data = json.dumps({"run": run_id}).encode()
    headers = {"content-type": "application/connect+json", AUTH[0][0]: AUTH[0][1]}
    async with session.post(
        f"{base}/batchyard.v1.LogService/TailLogs",
        data=struct.pack(">BI", 0, len(data)) + data,
        headers=headers,
    ) as response:
        assert response.status == 200
        opened.set()
        async for _ in response.content.iter_any():
            pass


async def main(args: argparse.Namespace) -> None:
    http_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    async with bench_server("--http-listen", f"127.0.0.1:{http_port}") as (target, _):
        async with grpc.aio.insecure_channel(target) as channel:
            stub = await prepare(channel)
            await single(stub, 1, args.in_flight)
            rate = await single(stub, args.seconds, args.in_flight)
            print(f"gRPC SubmitRun, {args.in_flight} in flight: {rate:,.0f} runs/s")
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await http_single(session, base, 1, args.in_flight)
            rate = await http_single(session, base, args.seconds, args.in_flight)
            print(f"HTTP/JSON SubmitRun, {args.in_flight} in flight: {rate:,.0f} runs/s")
            server = server_process(int(target.rsplit(":", 1)[1]))
            before = server.memory_info().rss
            headers = {"content-type": "application/json", AUTH[0][0]: AUTH[0][1]}
            async with session.post(
                f"{base}/batchyard.v1.RunService/SubmitRun",
                data=json.dumps({"definition": "bench"}),
                headers=headers,
            ) as response:
                run_id = (await response.json())["run"]["uuid"]
            events = [asyncio.Event() for _ in range(args.streams)]
            tasks = [asyncio.create_task(follow(session, base, run_id, e)) for e in events]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
            await asyncio.sleep(2)
            after = server.memory_info().rss
            mib = 1024 * 1024
            print(
                f"server RSS: {before / mib:.0f} MiB before, {after / mib:.0f} MiB with "
                f"{args.streams} TailLogs fetch streams open (+{(after - before) / mib:.0f} MiB)"
            )
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--streams", type=int, default=200)
    run(main(parser.parse_args()))
