"""Runs between protobuf and the domain."""

from __future__ import annotations

from uuid import UUID

from batchyard.server.api.job_convert import config_to_pb, retry_from_pb, seconds, timestamp
from batchyard.server.api.task_convert import tasks_to_pb
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.graph import ArraySummary, Condition, Dependency, Kind
from batchyard.server.domain.jobs import JobConfig, Secrets
from batchyard.server.domain.runs import Attempt, Overrides, Run, RunReason, RunStatus
from batchyard.v1 import job_pb2, pipeline_pb2
from batchyard.v1 import run_pb2 as pb

CONDITION_TO_PB = {
    Condition.SUCCEEDED: pipeline_pb2.DEPENDENCY_CONDITION_AFTER_SUCCESS,
    Condition.ANY: pipeline_pb2.DEPENDENCY_CONDITION_AFTER_ANY,
}
KIND_TO_PB = {
    Kind.RUN: pipeline_pb2.DEPENDENCY_TYPE_UNSPECIFIED,
    Kind.N_TO_N: pipeline_pb2.DEPENDENCY_TYPE_N_TO_N,
    Kind.SEQUENTIAL: pipeline_pb2.DEPENDENCY_TYPE_SEQUENTIAL,
}


def status_to_pb(status: RunStatus) -> pb.RunStatus.ValueType:
    return pb.RunStatus.Value(f"RUN_STATUS_{status.value}")


def status_from_pb(value: int) -> RunStatus | None:
    name = pb.RunStatus.Name(value) if value in pb.RunStatus.values() else ""  # type: ignore[arg-type]
    return RunStatus(name.removeprefix("RUN_STATUS_")) if value and name else None


def reason_to_pb(reason: RunReason) -> pb.RunReason.ValueType:
    return (
        pb.RunReason.Value(f"RUN_REASON_{reason.value}")
        if reason.value
        else pb.RUN_REASON_UNSPECIFIED
    )


def reason_from_pb(value: int) -> RunReason | None:
    if value == pb.RUN_REASON_UNSPECIFIED:
        return RunReason.NONE
    if value not in pb.RunReason.values():
        return None
    return RunReason(pb.RunReason.Name(value).removeprefix("RUN_REASON_"))  # type: ignore[arg-type]


def parse_run_id(value: str, field: str = "run") -> UUID:
    try:
        return UUID(value)
    except ValueError:
        problem = "required: a run uuid" if not value else "not a valid run uuid"
        raise InvalidArgument([FieldViolation(field, problem)]) from None


def overrides_from_pb(o: pb.RunOverrides) -> Overrides:
    return Overrides(
        args=tuple(o.args),
        env=dict(o.env),
        secret_env=dict(o.secret_env),
        timeout_seconds=seconds(o.timeout) if o.HasField("timeout") else None,
        retry_strategy=retry_from_pb(o.retry_strategy) if o.HasField("retry_strategy") else None,
        queue=o.queue,
        priority=o.priority if o.HasField("priority") else None,
    )


_BUDGETS = {
    "": pb.RETRY_BUDGET_UNSPECIFIED,
    "job": pb.RETRY_BUDGET_JOB,
    "infra": pb.RETRY_BUDGET_INFRA,
}


def _attempt_to_pb(a: Attempt) -> pb.Attempt:
    out = pb.Attempt(
        number=a.number,
        worker_id=a.worker_id,
        start_time=timestamp(a.start_time),
        end_time=timestamp(a.end_time),
        status=status_to_pb(a.status),
        reason=reason_to_pb(a.reason),
        message=a.message,
        retry_budget=_BUDGETS[a.retry_budget],
    )
    if a.exit_code is not None:
        out.exit_code = a.exit_code
    if a.peak_memory_bytes is not None:
        out.peak_memory_bytes = a.peak_memory_bytes
    if a.cpu_usec is not None:
        out.cpu_time.FromMicroseconds(a.cpu_usec)
    return out


class ConfigMemo:
    """Converts each distinct configuration once (the runs of a batch share theirs)."""

    def __init__(self) -> None:
        self._done: dict[tuple[int, int], tuple[JobConfig, Secrets, job_pb2.JobConfig]] = {}

    def __call__(self, config: JobConfig, secrets: Secrets) -> job_pb2.JobConfig:
        hit = self._done.get((id(config), id(secrets)))
        if hit is None or hit[0] is not config or hit[1] is not secrets:
            hit = (config, secrets, config_to_pb(config, secrets))
            self._done[(id(config), id(secrets))] = hit
        return hit[2]


def _dependency_to_pb(d: Dependency, own: UUID) -> pipeline_pb2.RunDependency:
    return pipeline_pb2.RunDependency(
        run=str(d.run) if d.run != own else "",
        condition=CONDITION_TO_PB[d.condition],
        type=KIND_TO_PB[d.kind],
    )


def _summary_to_pb(s: ArraySummary) -> pipeline_pb2.ArraySummary:
    return pipeline_pb2.ArraySummary(
        size=s.size,
        pending=s.pending,
        running=s.running,
        succeeded=s.succeeded,
        failed=s.failed,
        cancelled=s.cancelled,
    )


def run_to_pb(run: Run, configs: ConfigMemo | None = None) -> pb.Run:
    out = _plain_run_to_pb(run, configs)
    if run.array_size:
        out.array_size = run.array_size
        if run.parent_uuid is not None:
            out.parent_run = str(run.parent_uuid)
            out.array_index = run.array_index
    if run.array_summary is not None:
        out.array_summary.CopyFrom(_summary_to_pb(run.array_summary))
    if run.depends_on:
        own = [d for d in run.depends_on if d.run != run.uuid or d.kind == Kind.SEQUENTIAL]
        out.depends_on.extend(_dependency_to_pb(d, run.uuid) for d in own)
        out.dependencies_waiting = run.dependencies_waiting
    return out


def _plain_run_to_pb(run: Run, configs: ConfigMemo | None = None) -> pb.Run:
    convert = configs or config_to_pb
    out = pb.Run(
        uuid=str(run.uuid),
        workspace=run.workspace,
        definition_uuid=str(run.definition_uuid) if run.definition_uuid else "",
        definition_name=run.definition_name,
        definition_version=run.definition_version,
        config=convert(run.config, run.secrets),
        status=status_to_pb(run.status),
        reason=reason_to_pb(run.reason),
        message=run.message,
        cancel_requested=run.cancel_requested,
        progress=run.progress,
        attempts=[_attempt_to_pb(a) for a in run.attempts],
        num_retries_used=run.num_retries_used,
        num_infra_retries_used=run.num_infra_retries_used,
        payload_size=run.payload_size,
        request_id=run.request_id,
        submit_time=timestamp(run.submit_time),
        start_time=timestamp(run.start_time),
        end_time=timestamp(run.end_time),
        next_attempt_time=timestamp(run.next_attempt_time),
        revision=run.revision,
        queue_position=run.queue_position,
        schedule=str(run.schedule_uuid) if run.schedule_uuid else "",
        schedule_fire_time=timestamp(run.schedule_fire_time),
    )
    tasks_to_pb(run.tasks, out.tasks)
    if run.tasks is None:
        out.ClearField("tasks")
    return out


class FreshRuns:
    """Writes the runs a batch just created into its response. Fresh runs of one shape
    differ only in uuid, request id, payload size and submit time, so each shape is
    converted once and copied (~3x cheaper than converting every run)."""

    def __init__(self) -> None:
        self._configs = ConfigMemo()
        self._templates: dict[tuple[object, ...], pb.Run] = {}

    def write(self, run: Run, out: pb.Run) -> None:
        key = (id(run.config), id(run.secrets), run.definition_uuid, run.definition_version)
        template = self._templates.get(key)
        if template is None:
            self._templates[key] = template = run_to_pb(run, self._configs)
        out.CopyFrom(template)
        out.uuid = str(run.uuid)
        out.request_id = run.request_id
        out.payload_size = run.payload_size
        out.submit_time.FromDatetime(run.submit_time)
