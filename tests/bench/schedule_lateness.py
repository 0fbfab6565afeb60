"""Fire lateness: how long after its fire time a schedule's run is stored (the run's
submit time minus its fire time, both by the database clock). `--schedules` interval
schedules every second, their phases spread over the second, for `--seconds`; no worker
(the runs stay pending).

uv run python -m tests.bench.schedule_lateness [--schedules 20] [--seconds 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
    run_service_pb2_grpc,
    schedule_pb2,
    schedule_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import schedule_service_pb2 as spb
from tests.bench.common import bench_server, run, summary


async def main(count: int, seconds: float) -> None:
    async with bench_server() as (target, _):  # noqa: SIM117 (the token comes from it)
        async with aio_channel(target, token=os.environ["BATCHYARD_TOKEN"]) as channel:
            definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
            config = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="true")
            await definitions.CreateDefinition(
                definition_service_pb2.CreateDefinitionRequest(
                    definition=definition_pb2.Definition(name="tick", config=config)
                )
            )
            stub = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            made = []
            for i in range(count):
                s = schedule_pb2.Schedule(
                    definition="tick",
                    interval=duration_pb2.Duration(seconds=1),
                    overlap_policy=schedule_pb2.OVERLAP_POLICY_ALLOW,
                    max_concurrent_runs=1000,
                )
                s.start_time.FromDatetime(start + timedelta(seconds=i / count))
                s.end_time.FromDatetime(start + timedelta(seconds=seconds))
                made.append(
                    (await stub.CreateSchedule(spb.CreateScheduleRequest(schedule=s))).schedule
                )
            await asyncio.sleep(seconds + 4)
            runs = run_service_pb2_grpc.RunServiceStub(channel)
            late: list[float] = []
            token = ""
            while True:
                page = await runs.ListRuns(rpb.ListRunsRequest(page_size=1000, page_token=token))
                for r in page.runs:
                    fired = r.schedule_fire_time.ToDatetime(tzinfo=UTC)
                    stored = r.submit_time.ToDatetime(tzinfo=UTC)
                    late.append((stored - fired).total_seconds() * 1000)
                token = page.next_page_token
                if not token:
                    break
    print(f"fire lateness, {count} schedules x 1/s for {seconds:.0f} s: {summary(late)}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=50)
    args = parser.parse_args()
    run(main(args.schedules, args.seconds))
