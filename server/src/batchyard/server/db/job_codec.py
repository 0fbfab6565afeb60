"""Job configurations as JSON documents for the jsonb columns (and back)."""

from __future__ import annotations

from typing import Any

from batchyard.server.domain.jobs import (
    ExitCodeAction,
    ExitCodeRule,
    GitSource,
    InlineSource,
    JobConfig,
    JobType,
    Resources,
    RetryStrategy,
    S3Source,
    Secrets,
    Source,
    SqlTarget,
    WorkspaceSource,
)

_SOURCE_KINDS: dict[str, type[Source]] = {
    "workspace": WorkspaceSource,
    "git": GitSource,
    "s3": S3Source,
    "inline": InlineSource,
}


def config_to_json(config: JobConfig) -> dict[str, Any]:
    source: dict[str, Any] | None = None
    if config.source is not None:
        kind = next(k for k, cls in _SOURCE_KINDS.items() if isinstance(config.source, cls))
        source = {"kind": kind, **vars(config.source)}
    retry = config.retry_strategy
    return {
        "type": config.type.value if config.type else None,
        "source": source,
        "source_location": config.source_location,
        "args": list(config.args),
        "env": dict(config.env),
        "retry_strategy": {
            "num_retries": retry.num_retries,
            "delay_seconds": retry.delay_seconds,
            "retry_on_timeout": retry.retry_on_timeout,
            "exit_code_rules": [
                {"exit_codes": list(r.exit_codes), "action": r.action.value if r.action else None}
                for r in retry.exit_code_rules
            ],
        },
        "timeout_seconds": config.timeout_seconds,
        "queue": config.queue,
        "priority": config.priority,
        "resources": vars(config.resources),
        "sql_target": vars(config.sql_target) if config.sql_target else None,
    }


def config_from_json(doc: dict[str, Any]) -> JobConfig:
    source = None
    if doc["source"] is not None:
        fields = dict(doc["source"])
        source = _SOURCE_KINDS[fields.pop("kind")](**fields)
    retry = doc["retry_strategy"]
    rules = tuple(
        ExitCodeRule(tuple(r["exit_codes"]), ExitCodeAction(r["action"]) if r["action"] else None)
        for r in retry["exit_code_rules"]
    )
    return JobConfig(
        type=JobType(doc["type"]) if doc["type"] else None,
        source=source,
        source_location=doc["source_location"],
        args=tuple(doc["args"]),
        env=dict(doc["env"]),
        retry_strategy=RetryStrategy(
            num_retries=retry["num_retries"],
            delay_seconds=retry["delay_seconds"],
            retry_on_timeout=retry["retry_on_timeout"],
            exit_code_rules=rules,
        ),
        timeout_seconds=doc["timeout_seconds"],
        queue=doc["queue"],
        priority=doc["priority"],
        resources=Resources(**doc["resources"]),
        sql_target=SqlTarget(**doc["sql_target"]) if doc["sql_target"] else None,
    )


def secrets_to_json(secrets: Secrets) -> dict[str, Any]:
    return {"env": dict(secrets.env), "git_token": secrets.git_token, "sql_dsn": secrets.sql_dsn}


def secrets_from_json(doc: dict[str, Any]) -> Secrets:
    return Secrets(env=dict(doc["env"]), git_token=doc["git_token"], sql_dsn=doc["sql_dsn"])
