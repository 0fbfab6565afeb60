"""Two server processes on one database fire a schedule every second while one or the
other is killed with SIGKILL and started again: every fire time inside the catch-up
window makes exactly one run (no gap, no duplicate). Seeded, about 15 s."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
from datetime import UTC, timedelta

import pytest
from google.protobuf import duration_pb2

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_service_pb2_grpc,
    run_service_pb2_grpc,
    schedule_pb2,
    schedule_service_pb2_grpc,
)
from batchyard.v1 import schedule_service_pb2 as spb
from tests.processes import free_port, start_server, stop, wait_serving
from tests.server.helpers import define
from tests.server.schedule_helpers import fire_times, runs_of

pytestmark = pytest.mark.fault
SEED = 20261203
KILLS = 6


async def test_kill_9_replicas_at_fire_time_loses_and_duplicates_nothing(tmp_path, database_url):
    rng = random.Random(SEED)
    targets = [f"127.0.0.1:{free_port()}" for _ in range(2)]

    def start(i: int) -> subprocess.Popen[bytes]:
        args = ("--listen", targets[i], "--database-url", database_url, "--grace", "1")
        return start_server(*args, log=tmp_path / f"server{i}.log")

    servers = [start(0), start(1)]
    try:
        for i, proc in enumerate(servers):
            await wait_serving(targets[i], proc)
        async with aio_channel(targets[0]) as channel:
            await define(definition_service_pb2_grpc.DefinitionServiceStub(channel))
            stub = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
            made = await stub.CreateSchedule(
                spb.CreateScheduleRequest(
                    schedule=schedule_pb2.Schedule(
                        definition="job",
                        interval=duration_pb2.Duration(seconds=1),
                        overlap_policy=schedule_pb2.OVERLAP_POLICY_ALLOW,
                        max_concurrent_runs=1000,
                        catchup_window=duration_pb2.Duration(seconds=60),
                    )
                )
            )
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.4, 1.6))
            victim = rng.randrange(2)
            servers[victim].send_signal(signal.SIGKILL)  # mid-fire, or nearly
            servers[victim].wait()
            if rng.random() < 0.3:  # both down for a moment: the other goes too
                other = 1 - victim
                servers[other].send_signal(signal.SIGKILL)
                servers[other].wait()
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                servers[other] = start(other)
            servers[victim] = start(victim)
        for i, proc in enumerate(servers):
            await wait_serving(targets[i], proc)
        await asyncio.sleep(2.5)  # the last kills' missed times are caught up
        for proc in servers:
            assert await stop(proc) == 0
        servers = [start(0)]
        await wait_serving(targets[0], servers[0])
        async with aio_channel(targets[0]) as channel:
            await stub_pause(channel, made.schedule.uuid)
            got = fire_times(
                await runs_of(run_service_pb2_grpc.RunServiceStub(channel), made.schedule)
            )
    finally:
        for proc in servers:
            if proc.poll() is None:
                await stop(proc)
    assert len(got) >= 8
    first = got[0]
    assert got == [first + timedelta(seconds=k) for k in range(len(got))]  # no gap, no twice
    assert first.tzinfo == UTC


async def stub_pause(channel, schedule: str) -> None:
    stub = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
    await stub.PauseSchedule(spb.PauseScheduleRequest(schedule=schedule))
