"""Building blocks for schedule tests: create schedules over gRPC, drive a scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format

from batchyard.server.app import App
from batchyard.v1 import run_pb2, schedule_pb2
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import schedule_service_pb2 as spb


def future_start() -> datetime:
    """A start time far enough ahead that the server's own scheduler (on the real clock)
    never reaches it during a test; tests fire by calling run_once at simulated times."""
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2)


async def create(stub: Any, definition: str = "job", **fields: Any) -> schedule_pb2.Schedule:
    doc = {"definition": definition, **fields}
    for key in ("startTime", "endTime"):
        if isinstance(doc.get(key), datetime):
            doc[key] = doc[key].isoformat().replace("+00:00", "Z")
    schedule = json_format.ParseDict(doc, schedule_pb2.Schedule())
    reply = await stub.CreateSchedule(spb.CreateScheduleRequest(schedule=schedule))
    return reply.schedule


async def get(stub: Any, schedule: schedule_pb2.Schedule) -> schedule_pb2.Schedule:
    return (await stub.GetSchedule(spb.GetScheduleRequest(schedule=schedule.uuid))).schedule


async def runs_of(runs: Any, schedule: schedule_pb2.Schedule) -> list[run_pb2.Run]:
    """Every run of the schedule, oldest fire first."""
    out: list[run_pb2.Run] = []
    token = ""
    while True:
        page = await runs.ListRuns(
            rpb.ListRunsRequest(schedule=schedule.uuid, page_size=1000, page_token=token)
        )
        out += page.runs
        token = page.next_page_token
        if not token:
            return sorted(out, key=lambda r: r.schedule_fire_time.ToDatetime())


async def tick(app: App, at: datetime) -> None:
    assert app.scheduler is not None
    await app.scheduler.run_once(at)


def fire_times(runs: list[run_pb2.Run]) -> list[datetime]:
    return [r.schedule_fire_time.ToDatetime(tzinfo=UTC) for r in runs]
