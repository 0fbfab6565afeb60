"""`client.schedules` and `client.retention` of the synchronous face."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from batchyard.client.core.part import Part
from batchyard.client.core.requests import (
    Payload,
    StatusFilter,
    delete_runs_request,
    list_schedules,
    retention_policy,
    schedule_spec,
)
from batchyard.client.sync.call import Caller
from batchyard.client.sync.paging import Paged, listing
from batchyard.v1 import retention_service_pb2 as retpb
from batchyard.v1 import (
    retention_service_pb2_grpc,
    run_pb2,
    schedule_pb2,
    schedule_service_pb2_grpc,
)
from batchyard.v1 import schedule_service_pb2 as spb


class Schedules(Part[schedule_service_pb2_grpc.ScheduleServiceStub, Caller]):
    """`client.schedules`: definitions run on a timetable (cron in a time zone, or an
    interval), each fire time submitting at most one run."""

    def create(
        self,
        definition: str,
        *,
        cron: str | None = None,
        interval: float | None = None,
        time_zone: str = "",
        overlap: str = "skip",
        max_concurrent_runs: int = 0,
        catchup_window: float | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        note: str = "",
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        payload: Payload = None,
    ) -> schedule_pb2.Schedule:
        """A new schedule of `definition` (name or uuid): `cron` ("30 2 * * *",
        "@daily") read in `time_zone` (IANA, default UTC), or `interval` seconds;
        `overlap` is skip, buffer-one, allow (up to `max_concurrent_runs`) or
        cancel-other; `catchup_window` in seconds (default 600)."""
        spec, _ = schedule_spec(
            definition,
            cron=cron,
            interval=interval,
            time_zone=time_zone,
            overlap=overlap,
            max_concurrent_runs=max_concurrent_runs,
            catchup_window=catchup_window,
            start_time=start_time,
            end_time=end_time,
            note=note,
            args=args,
            env=env,
            payload=payload,
        )
        request = spb.CreateScheduleRequest(schedule=spec)
        return self._call(self._stub.CreateSchedule, request).schedule

    def get(self, schedule: str) -> schedule_pb2.Schedule:
        """The schedule with its next 5 fire times and its latest fires."""
        return self._call(
            self._stub.GetSchedule, spb.GetScheduleRequest(schedule=schedule)
        ).schedule

    def list(
        self, *, definition: str = "", limit: int | None = None, page_size: int = 0
    ) -> Paged[schedule_pb2.Schedule]:
        """The schedules, newest first; only those of `definition` when given."""
        return listing(
            self._call,
            self._stub.ListSchedules,
            list_schedules(definition),
            limit=limit,
            page_size=page_size,
        )

    def update(self, schedule: str, **changes: object) -> schedule_pb2.Schedule:
        """Change the fields given (the keywords of `create`); the timetable restarts now."""
        spec, mask = schedule_spec(**changes)  # type: ignore[arg-type]
        request = spb.UpdateScheduleRequest(schedule=schedule, values=spec)
        request.update_mask.paths.extend(mask)
        return self._call(self._stub.UpdateSchedule, request).schedule

    def delete(self, schedule: str) -> None:
        """Delete the schedule (its runs stay)."""
        self._call(self._stub.DeleteSchedule, spb.DeleteScheduleRequest(schedule=schedule))

    def pause(self, schedule: str) -> schedule_pb2.Schedule:
        """No fire until resumed; runs already submitted are not touched."""
        request = spb.PauseScheduleRequest(schedule=schedule)
        return self._call(self._stub.PauseSchedule, request).schedule

    def resume(self, schedule: str) -> schedule_pb2.Schedule:
        """Fire again from the next fire time (the times while paused are not fired)."""
        request = spb.ResumeScheduleRequest(schedule=schedule)
        return self._call(self._stub.ResumeSchedule, request).schedule

    def trigger(self, schedule: str) -> run_pb2.Run:
        """Submit a run of the schedule now (also when paused)."""
        request = spb.TriggerScheduleRequest(schedule=schedule)
        return self._call(self._stub.TriggerSchedule, request).run


class Retention(Part[retention_service_pb2_grpc.RetentionServiceStub, Caller]):
    """`client.retention`: how long finished runs are kept, and bulk deletion."""

    def get_policy(self, definition: str = "") -> retpb.GetRetentionPolicyResponse:
        """The workspace's policy (and a definition's override and effective policy)."""
        request = retpb.GetRetentionPolicyRequest(definition=definition)
        return self._call(self._stub.GetRetentionPolicy, request)

    def set_policy(
        self,
        *,
        definition: str = "",
        keep_for: float | None = None,
        keep_succeeded: int | None = None,
        keep_failed: int | None = None,
        audit_keep_for: float | None = None,
    ) -> retpb.RetentionPolicy:
        """Set the workspace's policy (or `definition`'s override); periods in seconds;
        None leaves a rule unset (admin tokens)."""
        policy = retention_policy(keep_for, keep_succeeded, keep_failed, audit_keep_for)
        request = retpb.SetRetentionPolicyRequest(definition=definition, policy=policy)
        return self._call(self._stub.SetRetentionPolicy, request).policy

    def delete_runs(
        self,
        *,
        status: StatusFilter = None,
        definition: str = "",
        schedule: str = "",
        older_than: float | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete the finished runs matching every filter given (never unfinished ones);
        `older_than` in seconds since they ended. Returns how many (with `dry_run`: how
        many would be)."""
        request = delete_runs_request(status, definition, schedule, older_than, dry_run)
        return self._call(self._stub.DeleteRuns, request).count
