"""Job definitions: names, drafts, and how an update mask changes one."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.job_validation import looks_like_uuid, validate_config
from batchyard.server.domain.jobs import GitSource, JobConfig, Secrets, with_defaults

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_DESCRIPTION = 4000


@dataclass(frozen=True)
class DefinitionDraft:
    """What a caller writes: everything but the identity and bookkeeping."""

    name: str
    description: str
    config: JobConfig
    secrets: Secrets


@dataclass(frozen=True)
class Definition:
    uuid: UUID
    workspace: str
    version: int
    draft: DefinitionDraft
    create_time: datetime
    update_time: datetime


def name_problem(name: str) -> str | None:
    if not name:
        return "required"
    if not NAME.match(name):
        return "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
    if looks_like_uuid(name):
        return "must not be a UUID (UUIDs identify definitions)"
    return None


def validate_draft(draft: DefinitionDraft) -> list[FieldViolation]:
    """Violations with paths relative to the Definition message."""
    out = []
    problem = name_problem(draft.name)
    if problem:
        out.append(FieldViolation("name", problem))
    if len(draft.description) > MAX_DESCRIPTION:
        out.append(FieldViolation("description", f"at most {MAX_DESCRIPTION} characters"))
    out += [v.under("config") for v in validate_config(draft.config, draft.secrets)]
    return out


def prepare(draft: DefinitionDraft) -> DefinitionDraft:
    """Validate a draft and fill in defaults, or raise InvalidArgument."""
    violations = validate_draft(draft)
    if violations:
        raise InvalidArgument(violations)
    return replace(draft, config=with_defaults(draft.config), secrets=_prune(draft))


def _prune(draft: DefinitionDraft) -> Secrets:
    """Drop secrets the configuration no longer uses (a token without a Git source)."""
    config, secrets = draft.config, draft.secrets
    token = secrets.git_token if isinstance(config.source, GitSource) else ""
    dsn = secrets.sql_dsn if config.sql_target is not None and config.sql_target.uses_dsn else ""
    return Secrets(env=secrets.env, git_token=token, sql_dsn=dsn)


# Paths an update mask may name, each with the JobConfig attribute it replaces.
CONFIG_FIELDS = {
    "config.type": "type",
    "config.source": "source",
    "config.source_location": "source_location",
    "config.args": "args",
    "config.env": "env",
    "config.retry_strategy": "retry_strategy",
    "config.timeout": "timeout_seconds",
    "config.queue": "queue",
    "config.priority": "priority",
    "config.resources": "resources",
    "config.sql_target": "sql_target",
    "config.ingest": "ingest",
}
SECRET_PATHS = {"config.secret_env", "config.source.git.access_token", "config.sql_target.dsn"}
UPDATABLE = {"name", "description", "config", *CONFIG_FIELDS, *SECRET_PATHS}


def apply_update(
    current: DefinitionDraft, changes: DefinitionDraft, paths: list[str]
) -> DefinitionDraft:
    """The draft after replacing the fields named by `paths` with those of `changes`.

    Secrets are write-only, so a caller who edits what GetDefinition returned sends
    them empty: an empty secret keeps the stored one unless its own path is named.
    """
    if not paths:
        raise InvalidArgument(
            [FieldViolation("update_mask", "required: name the fields to update")]
        )
    unknown = sorted(set(paths) - UPDATABLE)
    if unknown:
        raise InvalidArgument(
            [FieldViolation("update_mask", f"cannot update {p!r}") for p in unknown]
        )
    name = changes.name if "name" in paths else current.name
    description = changes.description if "description" in paths else current.description
    config = current.config
    if "config" in paths:
        config = changes.config
    else:
        for path, attr in CONFIG_FIELDS.items():
            if path in paths:
                config = replace(config, **{attr: getattr(changes.config, attr)})
    old, new = current.secrets, changes.secrets
    secrets = Secrets(
        env=new.env if "config.secret_env" in paths or new.env else old.env,
        git_token=new.git_token
        if "config.source.git.access_token" in paths or new.git_token
        else old.git_token,
        sql_dsn=new.sql_dsn if "config.sql_target.dsn" in paths or new.sql_dsn else old.sql_dsn,
    )
    return DefinitionDraft(name=name, description=description, config=config, secrets=secrets)


def is_uuid_ref(ref: str) -> bool:
    """Whether a definition reference is a uuid (names never are)."""
    return looks_like_uuid(ref)
