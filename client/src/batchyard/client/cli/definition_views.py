"""Definitions on the terminal: the list table and the key/value view of one definition."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime

from batchyard.client.cli.render import (
    absolute_time,
    as_datetime,
    duration,
    key_values,
    relative_time,
    table,
)
from batchyard.v1 import definition_pb2, job_pb2

TABLE_HEADERS = ("NAME", "VERSION", "TYPE", "QUEUE", "UPDATED", "UUID")

# Job types as the command line spells them, e.g. "python" ↔ JOB_TYPE_PYTHON.
JOB_TYPES: dict[str, job_pb2.JobType.ValueType] = {
    "python": job_pb2.JOB_TYPE_PYTHON,
    "sql": job_pb2.JOB_TYPE_SQL,
    "shell": job_pb2.JOB_TYPE_SHELL,
    "ingest": job_pb2.JOB_TYPE_INGEST,
}


def type_name(job_type: job_pb2.JobType.ValueType) -> str:
    """'python', 'sql', 'shell', 'ingest', or '-' when unset."""
    for name, value in JOB_TYPES.items():
        if value == job_type:
            return name
    return "-"


def definitions_table(definitions: Sequence[definition_pb2.Definition], now: datetime) -> str:
    """NAME, VERSION, TYPE, QUEUE, UPDATED (relative), UUID: one row per definition."""
    rows = [
        [
            d.name,
            str(d.version),
            type_name(d.config.type),
            d.config.queue or "-",
            relative_time(as_datetime(d.update_time), now),
            d.uuid,
        ]
        for d in definitions
    ]
    return table(TABLE_HEADERS, rows)


def definition_details(d: definition_pb2.Definition, now: datetime) -> str:
    """Every set field of a definition, one `Key:  value` line each."""
    config = d.config
    pairs = [
        ("Name", d.name),
        ("UUID", d.uuid),
        ("Version", str(d.version)),
        ("Workspace", d.workspace or "-"),
    ]
    if d.description:
        pairs.append(("Description", d.description))
    pairs += [("Type", type_name(config.type)), ("Source", _source(config.source))]
    if config.source_location:
        pairs.append(("Location", config.source_location))
    if config.args:
        pairs.append(("Args", shlex.join(config.args)))
    if config.env:
        pairs.append(("Env", "\n".join(f"{k}={v}" for k, v in sorted(config.env.items()))))
    if config.secret_env_names:
        pairs.append(("Secret env", ", ".join(config.secret_env_names) + " (values hidden)"))
    if config.HasField("sql_target"):
        pairs.append(("SQL target", _sql_target(config.sql_target)))
    if config.HasField("ingest"):
        ingest = config.ingest
        kind = ingest.format.WhichOneof("kind") or "-"
        dry = " (dry run)" if ingest.dry_run else ""
        pairs.append(("Ingest", f"{ingest.input.uri} → {ingest.table} as {kind}{dry}"))
    timeout = config.timeout.ToTimedelta().total_seconds()
    pairs += [
        ("Queue", config.queue or "-"),
        ("Priority", str(config.priority)),
        ("Timeout", duration(timeout) if config.HasField("timeout") else "-"),
        ("Retries", retries_text(config.retry_strategy)),
    ]
    resources = _resources(config.resources)
    if resources:
        pairs.append(("Resources", resources))
    pairs += [
        ("Created", absolute_time(as_datetime(d.create_time), now)),
        ("Updated", absolute_time(as_datetime(d.update_time), now)),
    ]
    return key_values(pairs)


def _source(source: job_pb2.Source) -> str:
    kind = source.WhichOneof("kind")
    if kind == "workspace":
        return f"workspace {source.workspace.path or '.'}"
    if kind == "git":
        git = source.git
        ref = f" @ {git.reference}" if git.reference else ""
        token = " (access token set)" if git.has_access_token else ""
        return f"git {git.repo_url}{ref}{token}"
    if kind == "s3":
        region = f" ({source.s3.region})" if source.s3.region else ""
        return f"s3 {source.s3.uri}{region}"
    if kind == "inline":
        return f"inline ({len(source.inline.text.encode())} bytes)"
    return "-"


def _sql_target(target: job_pb2.SqlTarget) -> str:
    if target.WhichOneof("target") == "connection":
        return f"connection {target.connection}"
    return "DSN (hidden)" if target.has_dsn else "-"


def infra_retries_text(strategy: job_pb2.RetryStrategy) -> str:
    """How many times an attempt lost with its worker is retried (not counted in the
    retries), e.g. '3 (default), at once'."""
    if strategy.HasField("num_infra_retries"):
        count = strategy.num_infra_retries
        return "none" if not count else f"{count}, at once, when a worker is lost"
    return "3 (default), at once, when a worker is lost"


def retries_text(strategy: job_pb2.RetryStrategy) -> str:
    """'none', or '3, 1m apart' plus the retry-on-timeout flag and exit-code rules."""
    if not strategy.num_retries:
        return "none"
    delay = (
        duration(strategy.delay_between_retries.ToTimedelta().total_seconds())
        if strategy.HasField("delay_between_retries")
        else "1m"
    )
    text = f"{strategy.num_retries}, {delay} apart"
    if strategy.retry_on_timeout:
        text += ", also on timeout"
    for rule in strategy.exit_code_rules:
        action = "retry" if rule.action == job_pb2.EXIT_CODE_ACTION_RETRY else "fail"
        codes = ",".join(str(c) for c in rule.exit_codes)
        text += f"\nexit code {codes}: {action}"
    return text


def _resources(r: job_pb2.ResourceRequirements) -> str:
    parts = []
    if r.cpus:
        parts.append(f"cpus={r.cpus:g}")
    if r.memory_bytes:
        parts.append(f"memory={r.memory_bytes / 2**20:g}MiB")
    if r.HasField("cpu_time"):
        parts.append(f"cpu-time={duration(r.cpu_time.ToTimedelta().total_seconds())}")
    if r.open_files:
        parts.append(f"open-files={r.open_files}")
    if r.processes:
        parts.append(f"processes={r.processes}")
    if r.output_bytes:
        parts.append(f"output={r.output_bytes / 2**20:g}MiB")
    return " ".join(parts)
