"""Schedules between protobuf and the domain, with validation of what a caller sends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from batchyard.server.api.job_convert import seconds, timestamp
from batchyard.server.api.run_convert import status_to_pb
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.jobs import Secrets
from batchyard.server.domain.runs import MAX_PAYLOAD_BYTES, RunStatus
from batchyard.server.domain.schedules import (
    DEFAULT_CATCHUP_SECONDS,
    DEFAULT_MAX_CONCURRENT,
    MAX_CATCHUP_SECONDS,
    MAX_CONCURRENT,
    MAX_NOTE,
    Fire,
    Overlap,
    Schedule,
    ScheduleNotFound,
    Timetable,
    timing_violations,
)
from batchyard.v1 import run_pb2
from batchyard.v1 import schedule_pb2 as pb

MAX_DEFINITION_REF = 200
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
UPDATABLE = (
    "definition",
    "overrides",
    "payload",
    "cron",
    "interval",
    "time_zone",
    "overlap_policy",
    "max_concurrent_runs",
    "catchup_window",
    "start_time",
    "end_time",
    "note",
)


def parse_schedule_id(ref: str, field: str = "schedule") -> UUID:
    try:
        return UUID(ref)
    except ValueError:
        if not ref:
            raise InvalidArgument([FieldViolation(field, "required: a schedule uuid")]) from None
        raise ScheduleNotFound(ref[:100]) from None


def _time(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    try:
        when: datetime = getattr(message, name).ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument([FieldViolation(name, "not a valid time")]) from None
    if not EARLIEST <= when <= LATEST:
        raise InvalidArgument([FieldViolation(name, "between the years 1970 and 9000")])
    return when


def _violations(s: pb.Schedule) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    ref = s.definition
    if not ref or len(ref) > MAX_DEFINITION_REF or not ref.isprintable():
        out.append(FieldViolation("definition", "required: a definition name or uuid"))
    timing = s.WhichOneof("timing")
    cron = s.cron if timing == "cron" else None
    interval = seconds(s.interval) if timing == "interval" else None
    out += timing_violations(cron, interval, s.time_zone)
    if s.overlap_policy not in pb.OverlapPolicy.values():
        out.append(FieldViolation("overlap_policy", "unknown overlap policy"))
    if not 0 <= s.max_concurrent_runs <= MAX_CONCURRENT:
        out.append(FieldViolation("max_concurrent_runs", f"0 to {MAX_CONCURRENT}"))
    if s.HasField("catchup_window") and not 0 < seconds(s.catchup_window) <= MAX_CATCHUP_SECONDS:
        out.append(FieldViolation("catchup_window", "more than 0, at most 366 days"))
    if len(s.note) > MAX_NOTE:
        out.append(FieldViolation("note", f"at most {MAX_NOTE} characters"))
    if len(s.payload) > MAX_PAYLOAD_BYTES:
        out.append(FieldViolation("payload", f"{len(s.payload)} bytes; at most 1 MiB"))
    return out


def schedule_from_pb(
    s: pb.Schedule,
    ws: Workspace,
    now: datetime,
    keep: Schedule | None = None,
) -> Schedule:
    """A schedule to store from what the caller sent (`keep`: the stored one an update
    changes). Field paths are relative to the Schedule message; the timetable restarts
    from `now`."""
    violations = _violations(s)
    start, end = _time(s, "start_time"), _time(s, "end_time")
    if start and end and end <= start:
        violations.append(FieldViolation("end_time", "must be after start_time"))
    if violations:
        raise InvalidArgument(violations)
    timing = s.WhichOneof("timing")
    table = Timetable(
        cron=s.cron.strip() if timing == "cron" else None,
        interval_seconds=seconds(s.interval) if timing == "interval" else None,
        time_zone=s.time_zone,
        anchor=start or now,
        start=start,
        end=end,
    )
    overrides = run_pb2.RunOverrides()
    overrides.CopyFrom(s.overrides)
    secret_env = dict(overrides.secret_env)
    overrides.ClearField("secret_env")
    policy = s.overlap_policy or pb.OVERLAP_POLICY_SKIP
    return Schedule(
        uuid=keep.uuid if keep else uuid.uuid4(),
        workspace_id=ws.id,
        workspace=ws.name,
        definition=s.definition,
        overrides=overrides.SerializeToString(deterministic=True),
        secrets=Secrets(env=secret_env),
        payload=s.payload,
        timetable=table,
        overlap=Overlap(pb.OverlapPolicy.Name(policy).removeprefix("OVERLAP_POLICY_")),
        max_concurrent_runs=s.max_concurrent_runs or DEFAULT_MAX_CONCURRENT,
        catchup_seconds=seconds(s.catchup_window)
        if s.HasField("catchup_window")
        else DEFAULT_CATCHUP_SECONDS,
        note=s.note,
        paused=keep.paused if keep else False,
        next_fire_at=table.next_after(now),
        missed_fires=keep.missed_fires if keep else 0,
        last_error=keep.last_error if keep else "",
        created_at=keep.created_at if keep else now,
        updated_at=now,
    )


def schedule_to_pb(s: Schedule, fires: list[Fire], full: bool = False) -> pb.Schedule:
    """The schedule as callers see it; `full` also keeps what is input only (payload,
    secret env), for an update to start from."""
    t = s.timetable
    out = pb.Schedule(
        uuid=str(s.uuid),
        workspace=s.workspace,
        definition=s.definition,
        overrides=run_pb2.RunOverrides.FromString(s.overrides),
        time_zone=t.time_zone,
        overlap_policy=pb.OverlapPolicy.Value(f"OVERLAP_POLICY_{s.overlap.value}"),
        max_concurrent_runs=s.max_concurrent_runs,
        start_time=timestamp(t.start),
        end_time=timestamp(t.end),
        note=s.note,
        paused=s.paused,
        payload_size=len(s.payload),
        next_fire_times=[] if s.paused else [_ts(x) for x in t.upcoming(s.next_fire_at)],
        recent_fires=[_fire_to_pb(f) for f in fires],
        missed_fires=s.missed_fires,
        last_error=s.last_error,
        create_time=timestamp(s.created_at),
        update_time=timestamp(s.updated_at),
    )
    out.catchup_window.FromTimedelta(_delta(s.catchup_seconds))
    if t.cron is not None:
        out.cron = t.cron
    else:
        out.interval.FromTimedelta(_delta(t.interval_seconds or 0.0))
    if full:
        out.payload = s.payload
        out.overrides.secret_env.update(s.secrets.env)
    return out


def _ts(when: datetime) -> Any:
    out = timestamp(when)
    assert out is not None
    return out


def _delta(secs: float) -> timedelta:
    return timedelta(microseconds=round(secs * 1_000_000))


def _fire_to_pb(f: Fire) -> pb.ScheduleFire:
    return pb.ScheduleFire(
        fire_time=timestamp(f.fire_time),
        handle_time=timestamp(f.handled_at),
        outcome=pb.FireOutcome.Value(f"FIRE_OUTCOME_{f.outcome.value}"),
        run=str(f.run) if f.run else "",
        run_status=status_to_pb(RunStatus(f.run_status))
        if f.run_status
        else run_pb2.RUN_STATUS_UNSPECIFIED,
        message=f.message,
        manual=f.manual,
    )


def apply_mask(current: Any, values: Any, paths: list[str]) -> Any:
    """`current` with the fields named by `paths` taken from `values`."""
    if not paths:
        raise InvalidArgument([FieldViolation("update_mask", "required: the fields to change")])
    merged: Any = pb.Schedule()
    merged.CopyFrom(current)
    for path in paths:
        if path not in UPDATABLE:
            raise InvalidArgument(
                [FieldViolation("update_mask", f"{path!r} cannot be updated; one of {UPDATABLE}")]
            )
        field = pb.Schedule.DESCRIPTOR.fields_by_name[path]
        if field.message_type is None:
            setattr(merged, path, getattr(values, path))
        elif values.HasField(path):
            getattr(merged, path).CopyFrom(getattr(values, path))
        else:
            merged.ClearField(path)
    return merged
