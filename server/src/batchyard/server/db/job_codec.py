"""Job configurations as JSON documents for the jsonb columns (and back), and their
secrets as one sealed value for the bytea columns (and back)."""

from __future__ import annotations

import json
from typing import Any

from batchyard.server.domain.errors import SecretsUnreadable
from batchyard.server.domain.jobs import (
    DEFAULT_INFRA_RETRIES,
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
from batchyard.server.secrets_crypto import BadCiphertext, KeyRing, UnknownKey

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
            "num_infra_retries": retry.num_infra_retries,
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
        **({"ingest": config.ingest} if config.ingest is not None else {}),
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
            num_infra_retries=retry.get("num_infra_retries", DEFAULT_INFRA_RETRIES),
            delay_seconds=retry["delay_seconds"],
            retry_on_timeout=retry["retry_on_timeout"],
            exit_code_rules=rules,
        ),
        timeout_seconds=doc["timeout_seconds"],
        queue=doc["queue"],
        priority=doc["priority"],
        resources=Resources(**doc["resources"]),
        sql_target=SqlTarget(**doc["sql_target"]) if doc["sql_target"] else None,
        ingest=doc.get("ingest"),
    )


def canonical_json(doc: dict[str, Any]) -> str:
    """One text per content: what run configuration ids are computed from."""
    return json.dumps(doc, sort_keys=True)


def secrets_to_json(secrets: Secrets) -> dict[str, Any]:
    return {"env": dict(secrets.env), "git_token": secrets.git_token, "sql_dsn": secrets.sql_dsn}


def secrets_from_json(doc: dict[str, Any]) -> Secrets:
    return Secrets(env=dict(doc["env"]), git_token=doc["git_token"], sql_dsn=doc["sql_dsn"])


class SecretBox:
    """Seals a configuration's secrets (the whole document, one value) for storage and
    opens them again; names a run configuration by a keyed digest of its content."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    def seal(self, secrets: Secrets) -> bytes:
        return self.seal_text(canonical_json(secrets_to_json(secrets)))

    def seal_text(self, secrets_text: str) -> bytes:
        return self.keys.seal(secrets_text.encode())

    def open(self, sealed: bytes) -> Secrets:
        """The secrets; SecretsUnreadable when this server lacks the key or the value was
        altered (the error names the key id, never a secret)."""
        try:
            plain = self.keys.open(sealed)
        except UnknownKey as exc:
            raise SecretsUnreadable(
                f"stored secrets are sealed with key {exc.key_id!r}, which this server "
                "is not configured with"
            ) from None
        except BadCiphertext:
            raise SecretsUnreadable("stored secrets fail authentication") from None
        return secrets_from_json(json.loads(plain))

    def config_id(self, config_text: str, secrets_text: str) -> bytes:
        """The id of a run configuration: equal content, equal id, and nothing about the
        secrets to learn from it without the key."""
        return self.keys.digest(config_text.encode(), secrets_text.encode())

    def is_current(self, sealed: bytes) -> bool:
        """Whether `sealed` is sealed with the first (newest) key."""
        return sealed.startswith(self.keys.header)
