"""JobConfig between protobuf and the domain. Secrets go in, never out."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import duration_pb2, json_format, timestamp_pb2

from batchyard.server.domain import jobs as d
from batchyard.v1 import job_pb2 as pb

_TYPES: dict[int, d.JobType] = {
    pb.JOB_TYPE_PYTHON: d.JobType.PYTHON,
    pb.JOB_TYPE_SQL: d.JobType.SQL,
    pb.JOB_TYPE_SHELL: d.JobType.SHELL,
    pb.JOB_TYPE_INGEST: d.JobType.INGEST,
}
_TYPES_BACK = {v: k for k, v in _TYPES.items()}
_ACTIONS: dict[int, d.ExitCodeAction] = {
    pb.EXIT_CODE_ACTION_RETRY: d.ExitCodeAction.RETRY,
    pb.EXIT_CODE_ACTION_EXIT: d.ExitCodeAction.EXIT,
}
_ACTIONS_BACK = {v: k for k, v in _ACTIONS.items()}


def seconds(value: duration_pb2.Duration) -> float:
    return value.seconds + value.nanos / 1e9


def duration(secs: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(secs * 1e9))
    return out


def timestamp(when: datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when)
    return out


def job_type_from_pb(value: int) -> d.JobType | None:
    return _TYPES.get(value)


def job_type_to_pb(value: d.JobType | None) -> pb.JobType.ValueType:
    return pb.JobType.ValueType(_TYPES_BACK[value]) if value else pb.JOB_TYPE_UNSPECIFIED


def _source_from_pb(source: pb.Source) -> d.Source | None:
    kind = source.WhichOneof("kind")
    if kind == "workspace":
        return d.WorkspaceSource(path=source.workspace.path)
    if kind == "git":
        g = source.git
        return d.GitSource(g.repo_url, g.reference, g.username, g.submodules)
    if kind == "s3":
        return d.S3Source(source.s3.uri, source.s3.region, source.s3.endpoint_url)
    if kind == "inline":
        return d.InlineSource(source.inline.text)
    return None


def retry_from_pb(retry: pb.RetryStrategy) -> d.RetryStrategy:
    return d.RetryStrategy(
        num_retries=retry.num_retries,
        num_infra_retries=retry.num_infra_retries
        if retry.HasField("num_infra_retries")
        else d.DEFAULT_INFRA_RETRIES,
        delay_seconds=seconds(retry.delay_between_retries)
        if retry.HasField("delay_between_retries")
        else None,
        retry_on_timeout=retry.retry_on_timeout,
        exit_code_rules=tuple(
            d.ExitCodeRule(tuple(r.exit_codes), _ACTIONS.get(r.action))
            for r in retry.exit_code_rules
        ),
    )


def config_from_pb(config: pb.JobConfig) -> tuple[d.JobConfig, d.Secrets]:
    """The domain configuration and the secrets it carries."""
    res = config.resources
    target = None
    if config.HasField("sql_target"):
        t = config.sql_target
        target = d.SqlTarget(connection=t.connection, uses_dsn=t.WhichOneof("target") == "dsn")
    domain = d.JobConfig(
        type=job_type_from_pb(config.type),
        source=_source_from_pb(config.source) if config.HasField("source") else None,
        source_location=config.source_location,
        args=tuple(config.args),
        env=dict(config.env),
        retry_strategy=retry_from_pb(config.retry_strategy),
        timeout_seconds=seconds(config.timeout) if config.HasField("timeout") else None,
        queue=config.queue,
        priority=config.priority,
        resources=d.Resources(
            cpus=res.cpus,
            memory_bytes=res.memory_bytes,
            cpu_time_seconds=seconds(res.cpu_time),
            open_files=res.open_files,
            processes=res.processes,
            output_bytes=res.output_bytes,
        ),
        sql_target=target,
        ingest=json_format.MessageToDict(config.ingest, preserving_proto_field_name=True)
        if config.HasField("ingest")
        else None,
    )
    secrets = d.Secrets(
        env=dict(config.secret_env),
        git_token=config.source.git.access_token if config.source.HasField("git") else "",
        sql_dsn=config.sql_target.dsn,
    )
    return domain, secrets


def _source_to_pb(source: d.Source, secrets: d.Secrets, out: pb.Source, reveal: bool) -> None:
    if isinstance(source, d.WorkspaceSource):
        out.workspace.path = source.path
    elif isinstance(source, d.GitSource):
        out.git.repo_url = source.repo_url
        out.git.reference = source.reference
        out.git.username = source.username
        out.git.submodules = source.submodules
        out.git.has_access_token = bool(secrets.git_token)
        if reveal:
            out.git.access_token = secrets.git_token
    elif isinstance(source, d.S3Source):
        out.s3.uri, out.s3.region, out.s3.endpoint_url = (
            source.uri,
            source.region,
            source.endpoint_url,
        )
    else:
        out.inline.text = source.text


def retry_to_pb(retry: d.RetryStrategy, out: pb.RetryStrategy) -> None:
    out.num_retries = retry.num_retries
    out.num_infra_retries = retry.num_infra_retries
    if retry.delay_seconds is not None:
        out.delay_between_retries.CopyFrom(duration(retry.delay_seconds))
    out.retry_on_timeout = retry.retry_on_timeout
    for rule in retry.exit_code_rules:
        out.exit_code_rules.add(
            exit_codes=rule.exit_codes,
            action=pb.ExitCodeAction.ValueType(_ACTIONS_BACK[rule.action])
            if rule.action
            else pb.EXIT_CODE_ACTION_UNSPECIFIED,
        )


def config_to_pb(config: d.JobConfig, secrets: d.Secrets, *, reveal: bool = False) -> pb.JobConfig:
    """The protobuf configuration; secrets only with `reveal` (for the worker's lease)."""
    out = pb.JobConfig(
        type=job_type_to_pb(config.type),
        source_location=config.source_location,
        args=config.args,
        env=config.env,
        queue=config.queue,
        priority=config.priority,
        secret_env_names=sorted(secrets.env),
    )
    if reveal:
        out.secret_env.update(secrets.env)
    if config.source is not None:
        _source_to_pb(config.source, secrets, out.source, reveal)
    if config.retry_strategy != d.RetryStrategy():
        retry_to_pb(config.retry_strategy, out.retry_strategy)
    if config.timeout_seconds is not None:
        out.timeout.CopyFrom(duration(config.timeout_seconds))
    res = config.resources
    if res != d.Resources():
        out.resources.cpus = res.cpus
        out.resources.memory_bytes = res.memory_bytes
        if res.cpu_time_seconds:
            out.resources.cpu_time.CopyFrom(duration(res.cpu_time_seconds))
        out.resources.open_files = res.open_files
        out.resources.processes = res.processes
        out.resources.output_bytes = res.output_bytes
    if config.sql_target is not None:
        if config.sql_target.uses_dsn:
            out.sql_target.has_dsn = True
            if reveal:
                out.sql_target.dsn = secrets.sql_dsn
        else:
            out.sql_target.connection = config.sql_target.connection
    if config.ingest is not None:
        json_format.ParseDict(config.ingest, out.ingest)
    return out
