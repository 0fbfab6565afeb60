"""Timetables without a server: cron in time zones across DST changes, intervals, the
catch-up rule and the overlap decisions."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from batchyard.server.domain.schedules import (
    FireOutcome,
    Overlap,
    Timetable,
    decide_overlap,
    plan_fires,
    timing_violations,
)

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def cron(expr: str, tz: str = "UTC", **kw: datetime) -> Timetable:
    return Timetable(cron=expr, interval_seconds=None, time_zone=tz, anchor=EPOCH, **kw)


def fires_between(table: Timetable, start: datetime, end: datetime) -> list[datetime]:
    out, t = [], table.next_after(start)
    while t is not None and t < end:
        out.append(t)
        t = table.next_after(t)
    return out


def local_days(times: list[datetime], tz: str) -> Counter[str]:
    return Counter(t.astimezone(ZoneInfo(tz)).date().isoformat() for t in times)


@pytest.mark.parametrize(
    ("tz", "spring", "autumn", "expr", "gap_fire", "repeat_fire"),
    [
        # Oslo: 02:00 -> 03:00 on 29 March, 03:00 -> 02:00 on 25 October.
        (
            "Europe/Oslo",
            "2026-03-29",
            "2026-10-25",
            "30 2 * * *",
            "03:00:00+02:00",
            "02:30:00+02:00",
        ),
        # New York: 02:00 -> 03:00 on 8 March, 02:00 -> 01:00 on 1 November.
        ("America/New_York", "2026-03-08", "2026-11-01", "30 2 * * *", "03:00:00-04:00", None),
        ("America/New_York", "2026-03-08", "2026-11-01", "30 1 * * *", None, "01:30:00-04:00"),
    ],
)
def test_a_daily_time_fires_once_on_both_change_days(
    tz: str, spring: str, autumn: str, expr: str, gap_fire: str | None, repeat_fire: str | None
) -> None:
    table = cron(expr, tz)
    for day, expected in ((spring, gap_fire), (autumn, repeat_fire)):
        start = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(tz)) - timedelta(days=2)
        times = fires_between(
            table, start.astimezone(UTC), start.astimezone(UTC) + timedelta(days=5)
        )
        assert set(local_days(times, tz).values()) == {1}, times  # once a day, change days too
        assert len(times) == 5
        local = [t.astimezone(ZoneInfo(tz)) for t in times]
        fired = next(t for t in local if t.date().isoformat() == day)
        if expected is not None:
            assert fired.isoformat()[11:] == expected
    assert all(b > a for a, b in itertools.pairwise(times))


def test_hourly_expressions_follow_real_time_through_a_repeated_hour() -> None:
    table = cron("0 * * * *", "Europe/Oslo")
    start = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)  # 00:30 CEST on the change day
    times = fires_between(table, start, start + timedelta(hours=6))
    assert len(times) == 6  # 01:00, 02:00 CEST, 02:00 CET, 03:00, 04:00, 05:00 CET
    assert [t - times[0] for t in times] == [timedelta(hours=h) for h in range(6)]


def test_a_time_zone_without_dst_is_plain() -> None:
    table = cron("30 2 * * *", "Asia/Tokyo")
    times = fires_between(table, EPOCH, EPOCH + timedelta(days=3))
    assert [t.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") for t in times] == ["02:30"] * 3


def test_shorthands_and_start_and_end() -> None:
    start = datetime(2026, 5, 1, 10, 15, tzinfo=UTC)
    table = cron("@hourly", start=start, end=start + timedelta(hours=3))
    assert table.upcoming(table.next_after(EPOCH), 10) == [
        datetime(2026, 5, 1, h, tzinfo=UTC) for h in (11, 12, 13)
    ]


def test_intervals_count_from_their_anchor_in_real_time() -> None:
    anchor = datetime(2026, 3, 28, 23, 0, 0, 500_000, tzinfo=UTC)
    table = Timetable(cron=None, interval_seconds=1.5, time_zone="Europe/Oslo", anchor=anchor)
    assert table.next_after(anchor - timedelta(days=1)) == anchor
    assert table.next_after(anchor) == anchor + timedelta(seconds=1.5)
    assert table.next_after(anchor + timedelta(seconds=2)) == anchor + timedelta(seconds=3)


def test_timing_is_validated() -> None:
    assert timing_violations("30 2 * * *", None, "Europe/Oslo") == []
    assert timing_violations("@daily", None, "") == []
    bad = [
        timing_violations("* * * * * *", None, ""),  # seconds: not 5 fields
        timing_violations("61 * * * *", None, ""),
        timing_violations(None, None, ""),
        timing_violations(None, 0.5, ""),
        timing_violations("@daily", None, "Mars/Olympus"),
        timing_violations("@daily", None, "../../etc/passwd"),
    ]
    fields = [[v.field for v in b] for b in bad]
    assert fields == [["cron"], ["cron"], ["cron"], ["interval"], ["time_zone"], ["time_zone"]]


def test_catch_up_fires_each_missed_time_inside_the_window_once_and_counts_the_rest() -> None:
    table = Timetable(cron=None, interval_seconds=60, time_zone="", anchor=EPOCH)
    now = EPOCH + timedelta(hours=1, seconds=30)
    plan = plan_fires(table, EPOCH, now, catchup_seconds=300)
    assert plan.due == [EPOCH + timedelta(seconds=s) for s in range(3360, 3601, 60)]
    assert plan.missed == 56  # 0 .. 3300: older than the window
    assert plan.cursor == EPOCH + timedelta(seconds=3660)
    crons = plan_fires(cron("* * * * *"), EPOCH, now, catchup_seconds=300)
    assert (crons.due, crons.missed, crons.cursor) == (plan.due, plan.missed, plan.cursor)


def test_a_pass_on_time_fires_just_that_time() -> None:
    table = cron("*/5 * * * *")
    plan = plan_fires(table, EPOCH, EPOCH + timedelta(seconds=0.3), catchup_seconds=600)
    assert (plan.due, plan.missed, plan.cursor) == ([EPOCH], 0, EPOCH + timedelta(minutes=5))


def test_overlap_decisions() -> None:
    busy = [uuid.uuid4()]
    assert decide_overlap(Overlap.SKIP, [], 1, False).submit
    skip = decide_overlap(Overlap.SKIP, busy, 10, False)
    assert (skip.submit, skip.outcome) == (False, FireOutcome.SKIPPED)
    assert decide_overlap(Overlap.BUFFER_ONE, busy, 10, False).outcome == FireOutcome.BUFFERED
    assert decide_overlap(Overlap.BUFFER_ONE, busy, 10, True).outcome == FireOutcome.SKIPPED
    assert decide_overlap(Overlap.ALLOW, busy, 2, False).submit
    assert not decide_overlap(Overlap.ALLOW, busy * 2, 2, False).submit
    replace = decide_overlap(Overlap.CANCEL_OTHER, busy, 1, False)
    assert (replace.submit, replace.cancel) == (True, tuple(busy))
