"""ScheduleService and the scheduler against a real server and PostgreSQL, driven by
simulated times (run_once(at)): no test waits for a cron minute."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_pb2, schedule_pb2, schedule_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import schedule_service_pb2 as spb
from tests.rpc import failure
from tests.server.helpers import complete, define, lease
from tests.server.schedule_helpers import create, fire_times, future_start, get, runs_of, tick

HOUR = timedelta(hours=1)


@pytest.fixture
def schedules(channel: grpc.aio.Channel) -> schedule_service_pb2_grpc.ScheduleServiceStub:
    return schedule_service_pb2_grpc.ScheduleServiceStub(channel)


async def expect(call, code):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    got = failure(info.value)
    assert got.code == code, got
    return got


async def cancel(runs, run: run_pb2.Run) -> None:
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))


async def test_create_shows_the_next_five_fire_times_and_validates(definitions, schedules):
    await define(definitions)
    start = future_start()
    s = await create(
        schedules, cron="30 2 * * *", timeZone="Europe/Oslo", startTime=start, note="nightly"
    )
    times = [t.ToDatetime(tzinfo=UTC) for t in s.next_fire_times]
    assert len(times) == 5 and times == sorted(times) and times[0] >= start
    assert {t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Oslo")).hour for t in times} <= {
        2,
        3,
    }
    assert s.overlap_policy == schedule_pb2.OVERLAP_POLICY_SKIP and s.note == "nightly"
    assert s.catchup_window.seconds == 600 and not s.paused
    bad = await expect(create(schedules, cron="61 * * * *"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "schedule.cron" in bad.fields
    bad = await expect(
        create(schedules, interval="5s", timeZone="Nowhere/Land"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "schedule.time_zone" in bad.fields
    missing = await expect(create(schedules, "nope", cron="@daily"), grpc.StatusCode.NOT_FOUND)
    assert missing.reason == "DEFINITION_NOT_FOUND"
    bad = await expect(
        create(schedules, cron="@daily", overrides={"timeout": "-5s"}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    listed = await schedules.ListSchedules(spb.ListSchedulesRequest())
    assert [x.uuid for x in listed.schedules] == [s.uuid]  # nothing else was stored
    assert listed.schedules[0].next_fire_times[0] == s.next_fire_times[0]


async def test_skip_does_not_start_while_the_previous_run_is_unfinished(
    server, definitions, schedules, runs
):
    await define(definitions)
    t0 = future_start()
    s = await create(schedules, interval="3600s", startTime=t0, overlapPolicy="OVERLAP_POLICY_SKIP")
    await tick(server, t0)
    await tick(server, t0 + HOUR)  # the first run is still pending: skipped
    first = await runs_of(runs, s)
    assert fire_times(first) == [t0]
    await cancel(runs, first[0])
    await tick(server, t0 + 2 * HOUR)
    assert fire_times(await runs_of(runs, s)) == [t0, t0 + 2 * HOUR]
    fires = (await get(schedules, s)).recent_fires
    assert [f.outcome for f in fires] == [
        schedule_pb2.FIRE_OUTCOME_SUBMITTED,
        schedule_pb2.FIRE_OUTCOME_SKIPPED,
        schedule_pb2.FIRE_OUTCOME_SUBMITTED,
    ]
    assert first[0].uuid in fires[1].message and fires[2].run == first[0].uuid
    assert fires[2].run_status == run_pb2.RUN_STATUS_CANCELLED


async def test_buffer_one_keeps_one_fire_until_the_runs_end(server, definitions, schedules, runs):
    await define(definitions)
    t0 = future_start()
    s = await create(
        schedules, interval="3600s", startTime=t0, overlapPolicy="OVERLAP_POLICY_BUFFER_ONE"
    )
    for k in range(3):
        await tick(server, t0 + k * HOUR)
    first = await runs_of(runs, s)
    assert fire_times(first) == [t0]
    outcomes = [f.outcome for f in (await get(schedules, s)).recent_fires]
    assert outcomes == [
        schedule_pb2.FIRE_OUTCOME_SKIPPED,
        schedule_pb2.FIRE_OUTCOME_BUFFERED,
        schedule_pb2.FIRE_OUTCOME_SUBMITTED,
    ]
    await tick(server, t0 + 2 * HOUR + timedelta(seconds=1))  # still unfinished: waits
    assert len(await runs_of(runs, s)) == 1
    await cancel(runs, first[0])
    await tick(server, t0 + 2 * HOUR + timedelta(seconds=2))
    assert fire_times(await runs_of(runs, s)) == [t0, t0 + HOUR]  # the buffered fire's run


async def test_allow_runs_up_to_max_concurrent_runs(server, definitions, schedules, runs):
    await define(definitions)
    t0 = future_start()
    s = await create(
        schedules,
        interval="60s",
        startTime=t0,
        overlapPolicy="OVERLAP_POLICY_ALLOW",
        maxConcurrentRuns=2,
    )
    for k in range(4):
        await tick(server, t0 + timedelta(minutes=k))
    assert fire_times(await runs_of(runs, s)) == [t0, t0 + timedelta(minutes=1)]


async def test_cancel_other_replaces_pending_and_running_runs(
    server, definitions, schedules, runs, workers
):
    await define(definitions)
    t0 = future_start()
    s = await create(
        schedules, interval="60s", startTime=t0, overlapPolicy="OVERLAP_POLICY_CANCEL_OTHER"
    )
    await tick(server, t0)
    [leased] = await lease(workers)
    await tick(server, t0 + timedelta(minutes=1))  # the first is running: asked to stop
    await tick(server, t0 + timedelta(minutes=2))  # the second is pending: cancelled
    first, second, third = await runs_of(runs, s)
    assert leased.run == first.uuid and first.cancel_requested
    assert second.status == run_pb2.RUN_STATUS_CANCELLED
    assert second.reason == run_pb2.RUN_REASON_CANCELLED_BY_SCHEDULE
    assert s.uuid in second.message
    assert third.status == run_pb2.RUN_STATUS_PENDING
    await complete(workers, leased, status=run_pb2.RUN_STATUS_CANCELLED)


async def test_catch_up_after_downtime_fires_each_time_inside_the_window(
    server, definitions, schedules, runs
):
    await define(definitions)
    t0 = future_start()
    s = await create(
        schedules,
        cron="* * * * *",
        startTime=t0,
        catchupWindow="300s",
        overlapPolicy="OVERLAP_POLICY_ALLOW",
        maxConcurrentRuns=100,
    )
    # Every replica was down for an hour: the times of the last 5 minutes fire, once each.
    await tick(server, t0 + HOUR + timedelta(seconds=10))
    await tick(server, t0 + HOUR + timedelta(seconds=20))
    expected = [t0 + HOUR - timedelta(minutes=m) for m in range(4, -1, -1)]
    assert fire_times(await runs_of(runs, s)) == expected
    after = await get(schedules, s)
    assert after.missed_fires == 56
    assert after.next_fire_times[0].ToDatetime(tzinfo=UTC) == t0 + HOUR + timedelta(minutes=1)


async def test_pause_and_resume(server, definitions, schedules, runs):
    await define(definitions)
    t0 = future_start()
    s = await create(
        schedules, interval="3600s", startTime=t0, overlapPolicy="OVERLAP_POLICY_ALLOW"
    )
    await tick(server, t0)
    paused = (await schedules.PauseSchedule(spb.PauseScheduleRequest(schedule=s.uuid))).schedule
    assert paused.paused and not paused.next_fire_times
    await tick(server, t0 + 3 * HOUR)
    [only] = await runs_of(runs, s)
    assert only.status == run_pb2.RUN_STATUS_PENDING  # pausing touched no submitted run
    resumed = (await schedules.ResumeSchedule(spb.ResumeScheduleRequest(schedule=s.uuid))).schedule
    assert not resumed.paused and len(resumed.next_fire_times) == 5
    await tick(server, resumed.next_fire_times[0].ToDatetime(tzinfo=UTC))
    assert len(await runs_of(runs, s)) == 2


async def test_trigger_runs_now_even_when_paused(server, definitions, schedules, runs):
    await define(definitions)
    s = await create(schedules, cron="@yearly", startTime=future_start())
    await schedules.PauseSchedule(spb.PauseScheduleRequest(schedule=s.uuid))
    run = (await schedules.TriggerSchedule(spb.TriggerScheduleRequest(schedule=s.uuid))).run
    assert run.schedule == s.uuid and run.status == run_pb2.RUN_STATUS_PENDING
    assert [r.uuid for r in await runs_of(runs, s)] == [run.uuid]
    [fire] = (await get(schedules, s)).recent_fires
    assert fire.manual and fire.run == run.uuid
    missing = await expect(
        schedules.TriggerSchedule(
            spb.TriggerScheduleRequest(schedule="0" * 8 + "-0000-0000-0000-" + "0" * 12)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert missing.reason == "SCHEDULE_NOT_FOUND"


async def test_no_fire_after_the_end_time(server, definitions, schedules, runs):
    await define(definitions)
    t0 = future_start()
    s = await create(
        schedules,
        interval="3600s",
        startTime=t0,
        endTime=t0 + 2 * HOUR,
        overlapPolicy="OVERLAP_POLICY_ALLOW",
    )
    assert len(s.next_fire_times) == 3
    for k in range(6):
        await tick(server, t0 + k * HOUR)
    assert fire_times(await runs_of(runs, s)) == [t0, t0 + HOUR, t0 + 2 * HOUR]
    assert not (await get(schedules, s)).next_fire_times


async def test_a_deleted_definition_fails_its_fires_and_the_schedule_says_so(
    server, definitions, schedules, runs
):
    await define(definitions)
    t0 = future_start()
    s = await create(schedules, interval="3600s", startTime=t0)
    await definitions.DeleteDefinition(dpb.DeleteDefinitionRequest(definition="job"))
    await tick(server, t0)
    after = await get(schedules, s)
    assert "definition 'job' not found" in after.last_error
    [fire] = after.recent_fires
    assert fire.outcome == schedule_pb2.FIRE_OUTCOME_FAILED and not fire.run
    assert "not found" in fire.message
    assert await runs_of(runs, s) == []
    await define(definitions)  # a new definition of that name: fires work again
    await tick(server, t0 + HOUR)
    assert len(await runs_of(runs, s)) == 1 and not (await get(schedules, s)).last_error


async def test_update_changes_the_timetable_and_delete_keeps_the_runs(
    server, definitions, schedules, runs
):
    await define(definitions)
    t0 = future_start()
    s = await create(schedules, interval="3600s", startTime=t0)
    await tick(server, t0)
    updated = (
        await schedules.UpdateSchedule(
            spb.UpdateScheduleRequest(
                schedule=s.uuid,
                values=schedule_pb2.Schedule(
                    cron="0 12 * * *", time_zone="America/New_York", note="noon"
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["cron", "time_zone", "note"]),
            )
        )
    ).schedule
    assert updated.cron == "0 12 * * *" and updated.note == "noon"
    assert updated.recent_fires[0].outcome == schedule_pb2.FIRE_OUTCOME_SUBMITTED
    for t in updated.next_fire_times:
        assert t.ToDatetime(tzinfo=UTC).hour in (16, 17)  # noon in New York
    bad = await expect(
        schedules.UpdateSchedule(
            spb.UpdateScheduleRequest(
                schedule=s.uuid,
                values=schedule_pb2.Schedule(uuid="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["uuid"]),
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "update_mask" in bad.fields
    await schedules.DeleteSchedule(spb.DeleteScheduleRequest(schedule=s.uuid))
    await expect(get(schedules, s), grpc.StatusCode.NOT_FOUND)
    assert len(await runs_of(runs, s)) == 1  # the runs stay, still naming it


async def test_three_replicas_fire_every_second_exactly_once(server_factory, admin_token):
    """Three servers (own pools, own schedulers) on one database, passes at slightly
    different simulated times, one schedule firing every second for 60 seconds."""
    from batchyard.client.connection import aio_channel
    from batchyard.v1 import definition_service_pb2_grpc, run_service_pb2_grpc

    apps = [await server_factory() for _ in range(3)]
    async with aio_channel(f"127.0.0.1:{apps[0].port}", token=admin_token) as ch:
        await define(definition_service_pb2_grpc.DefinitionServiceStub(ch))
        stub = schedule_service_pb2_grpc.ScheduleServiceStub(ch)
        runs = run_service_pb2_grpc.RunServiceStub(ch)
        t0 = future_start()
        s = await create(
            stub,
            interval="1s",
            startTime=t0,
            endTime=t0 + timedelta(seconds=59),
            overlapPolicy="OVERLAP_POLICY_ALLOW",
            maxConcurrentRuns=1000,
        )
        for k in range(62):
            await asyncio.gather(
                *(tick(app, t0 + timedelta(seconds=k + 0.3 * i)) for i, app in enumerate(apps))
            )
        got = await runs_of(runs, s)
    assert len(got) == 60
    assert fire_times(got) == [t0 + timedelta(seconds=k) for k in range(60)]


async def test_the_running_scheduler_fires_on_the_real_clock(definitions, schedules, runs):
    """No simulated time: the server's own scheduler, asleep with nothing to do, is woken
    by the new schedule and fires it each second."""
    await define(definitions)
    s = await create(schedules, interval="1s", overlapPolicy="OVERLAP_POLICY_ALLOW")
    for _ in range(200):
        fired = await runs_of(runs, s)
        if len(fired) >= 2:
            break
        await asyncio.sleep(0.1)
    times = fire_times(fired)
    assert len(times) >= 2 and times[1] - times[0] == timedelta(seconds=1)
    for run in fired:
        assert run.submit_time.ToDatetime(tzinfo=UTC) >= run.schedule_fire_time.ToDatetime(
            tzinfo=UTC
        )
