"""Schedules: timetables (cron in a time zone, or a fixed interval), overlap policies and
the catch-up rule. Pure: the scheduler (maintenance/scheduler.py) and the API use it.

Cron expressions are parsed and evaluated by cronsim (Debian cron's semantics); time
zones come from zoneinfo. The DST rule is Debian cron's, which cronsim implements: a
time in the hour the clocks skip fires once, at the first minute after the gap; a time
in an hour that repeats fires once, at its first occurrence; expressions that run every
hour or more often follow real time. `next_after` adds one guard: a fire time is always
strictly later, in real time, than the one before it.

Catch-up rule: fire times the scheduler finds in the past (after downtime) are fired
each once, oldest first, if they are at most `catchup_seconds` old; older ones are only
counted (`missed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from batchyard.server.domain.errors import FieldViolation, NotFound
from batchyard.server.domain.jobs import Secrets

SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 366 * 24 * 3600.0
DEFAULT_CATCHUP_SECONDS = 600.0
MAX_CATCHUP_SECONDS = 366 * 24 * 3600.0
DEFAULT_MAX_CONCURRENT = 10
MAX_CONCURRENT = 1000
MAX_NOTE = 1000
UPCOMING = 5
MAX_FIRES_PER_PASS = 1000
"""A pass fires at most this many times of one schedule (the rest go in the next pass)."""
MAX_MISSED_COUNTED = 10_000
"""Past this many missed times of a cron schedule the count stops and the cursor jumps."""


class ScheduleNotFound(NotFound):
    reason = "SCHEDULE_NOT_FOUND"

    def __init__(self, ref: str) -> None:
        super().__init__(f"schedule {ref!r} not found")


class Overlap(StrEnum):
    SKIP = "SKIP"
    BUFFER_ONE = "BUFFER_ONE"
    ALLOW = "ALLOW"
    CANCEL_OTHER = "CANCEL_OTHER"


class FireOutcome(StrEnum):
    SUBMITTED = "SUBMITTED"
    SKIPPED = "SKIPPED"
    BUFFERED = "BUFFERED"
    FAILED = "FAILED"


def cron_fields(expr: str) -> str:
    """The 5-field form of `expr` (a shorthand expanded)."""
    text = expr.strip()
    return SHORTHANDS.get(text.lower(), text)


def timing_violations(cron: str | None, interval: float | None, tz: str) -> list[FieldViolation]:
    out = []
    if (cron is None) == (interval is None):
        out.append(FieldViolation("cron", "exactly one of cron or interval is required"))
    if cron is not None:
        fields = cron_fields(cron)
        if len(fields.split()) != 5:
            out.append(
                FieldViolation("cron", "5 fields (minute hour day month weekday) or @daily-style")
            )
        else:
            try:
                CronSim(fields, datetime(2000, 1, 1))
            except (CronSimError, ValueError, IndexError, KeyError, OverflowError) as exc:
                out.append(FieldViolation("cron", f"not a cron expression: {exc}"))
    if interval is not None and not MIN_INTERVAL_SECONDS <= interval <= MAX_INTERVAL_SECONDS:
        out.append(FieldViolation("interval", "1 second to 366 days"))
    if tz and (tz not in _zones() or not _zone_ok(tz)):
        out.append(FieldViolation("time_zone", f"{tz!r} is not an IANA time zone"))
    return out


@cache
def _zones() -> set[str]:
    return available_timezones()


def _zone_ok(tz: str) -> bool:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Timetable:
    cron: str | None
    interval_seconds: float | None
    time_zone: str
    anchor: datetime
    """Where intervals count from."""
    start: datetime | None = None
    end: datetime | None = None

    def next_after(self, t: datetime) -> datetime | None:
        """The first fire time strictly after `t` (UTC), or None past the end."""
        if self.start is not None and t < self.start:
            t = self.start - timedelta(microseconds=1)
        found = self._cron_after(t) if self.cron is not None else self._interval_after(t)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found

    def upcoming(self, cursor: datetime | None, count: int = UPCOMING) -> list[datetime]:
        """`cursor` (the next fire time) and those after it, `count` at most."""
        out: list[datetime] = []
        while cursor is not None and len(out) < count:
            out.append(cursor)
            cursor = self.next_after(cursor)
        return out

    def _cron_after(self, t: datetime) -> datetime | None:
        zone = ZoneInfo(self.time_zone or "UTC")
        it = CronSim(cron_fields(self.cron or ""), t.astimezone(zone))
        for _ in range(1000):  # a repeated hour can yield times already passed
            try:
                local = next(it)
            except StopIteration:
                return None
            found = local.astimezone(UTC)
            if found > t:
                return found
        return None  # pragma: no cover - cron never repeats 1000 passed times

    def _interval_after(self, t: datetime) -> datetime:
        step = round((self.interval_seconds or 1.0) * 1_000_000)
        elapsed = _micros(t - self.anchor)
        k = 0 if elapsed < 0 else elapsed // step + 1
        return self.anchor + timedelta(microseconds=k * step)


def _micros(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


@dataclass(frozen=True)
class FirePlan:
    due: list[datetime]
    """The fire times to act on now, oldest first."""
    missed: int
    """Fire times older than the catch-up window, not fired."""
    cursor: datetime | None
    """The next fire time after this pass (None: the timetable ended)."""


def plan_fires(
    table: Timetable, cursor: datetime | None, now: datetime, catchup_seconds: float
) -> FirePlan:
    """What a pass at `now` does, starting from the next unfired time `cursor`."""
    oldest = now - timedelta(seconds=catchup_seconds)
    due: list[datetime] = []
    missed = 0
    while cursor is not None and cursor <= now and len(due) < MAX_FIRES_PER_PASS:
        if cursor >= oldest:
            due.append(cursor)
        else:
            missed += 1
            if missed >= MAX_MISSED_COUNTED or table.cron is None:
                missed += _skip_count(table, cursor, oldest)
                cursor = table.next_after(oldest - timedelta(microseconds=1))
                continue
        cursor = table.next_after(cursor)
    return FirePlan(due, missed, cursor)


def _skip_count(table: Timetable, cursor: datetime, oldest: datetime) -> int:
    """How many more interval fire times lie after `cursor` and before `oldest` (cron:
    not counted past MAX_MISSED_COUNTED)."""
    if table.cron is not None or table.interval_seconds is None:
        return 0
    step = round(table.interval_seconds * 1_000_000)
    gap = _micros(oldest - cursor)
    return max(0, (gap - 1) // step)


@dataclass(frozen=True)
class Schedule:
    uuid: UUID
    workspace_id: UUID
    workspace: str
    definition: str
    overrides: bytes
    """A serialized batchyard.v1.RunOverrides, secret env left out (kept in `secrets`)."""
    secrets: Secrets
    payload: bytes
    timetable: Timetable
    overlap: Overlap
    max_concurrent_runs: int
    catchup_seconds: float
    note: str
    paused: bool
    next_fire_at: datetime | None
    missed_fires: int
    last_error: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Fire:
    fire_time: datetime
    handled_at: datetime
    outcome: FireOutcome
    run: UUID | None
    run_status: str | None
    message: str
    manual: bool


@dataclass(frozen=True)
class OverlapDecision:
    submit: bool
    outcome: FireOutcome
    cancel: tuple[UUID, ...] = ()
    message: str = ""


def decide_overlap(
    policy: Overlap, unfinished: list[UUID], max_concurrent: int, buffered: bool
) -> OverlapDecision:
    """What a fire does given the schedule's unfinished runs (and whether a fire already
    waits, for BUFFER_ONE)."""
    if not unfinished:
        return OverlapDecision(True, FireOutcome.SUBMITTED)
    if policy is Overlap.CANCEL_OTHER:
        return OverlapDecision(True, FireOutcome.SUBMITTED, cancel=tuple(unfinished))
    if policy is Overlap.ALLOW and len(unfinished) < max_concurrent:
        return OverlapDecision(True, FireOutcome.SUBMITTED)
    if policy is Overlap.BUFFER_ONE and not buffered:
        return OverlapDecision(False, FireOutcome.BUFFERED, message=_busy(unfinished))
    why = f"{len(unfinished)} unfinished (max_concurrent_runs {max_concurrent})"
    if policy is Overlap.BUFFER_ONE:
        why = "a fire is already buffered"
    elif policy is Overlap.SKIP:
        why = _busy(unfinished)
    return OverlapDecision(False, FireOutcome.SKIPPED, message=f"overlap {policy.value}: {why}")


def _busy(unfinished: list[UUID]) -> str:
    return f"run {unfinished[0]} is unfinished" + (
        f" (and {len(unfinished) - 1} more)" if len(unfinished) > 1 else ""
    )
