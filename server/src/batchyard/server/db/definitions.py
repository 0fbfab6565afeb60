"""Typed queries for job definitions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NoReturn
from uuid import UUID

import asyncpg

from batchyard.server.db.job_codec import SecretBox, config_from_json, config_to_json
from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.definitions import Definition, DefinitionDraft, is_uuid_ref
from batchyard.server.domain.errors import (
    Conflict,
    DefinitionExists,
    DefinitionNotFound,
    SecretsUnreadable,
)
from batchyard.server.domain.jobs import JobType


async def workspace_by_name(pool: asyncpg.Pool | asyncpg.Connection, name: str) -> Workspace | None:
    row = await pool.fetchrow(q("workspace_by_name"), name)
    return Workspace(row["id"], row["name"]) if row else None


def _ref_args(ref: str) -> tuple[UUID | None, str | None]:
    return (UUID(ref), None) if is_uuid_ref(ref) else (None, ref)


def _draft_values(box: SecretBox, draft: DefinitionDraft) -> dict[str, Any]:
    job_type = draft.config.type.value if draft.config.type else JobType.SHELL.value
    return {
        "name": draft.name,
        "description": draft.description,
        "job_type": job_type,
        "config": config_to_json(draft.config),
        "sealed_secrets": box.seal(draft.secrets),
    }


def _from_row(box: SecretBox, row: asyncpg.Record) -> Definition:
    draft = DefinitionDraft(
        name=row["name"],
        description=row["description"],
        config=config_from_json(row["config"]),
        secrets=box.open(row["sealed_secrets"]),
    )
    return Definition(
        uuid=row["id"],
        workspace=row["workspace"],
        version=row["version"],
        draft=draft,
        create_time=row["created_at"],
        update_time=row["updated_at"],
    )


def _raise_name_taken(exc: asyncpg.UniqueViolationError, name: str) -> NoReturn:
    """A unique violation becomes a domain error by its constraint's name."""
    if exc.constraint_name == "definitions_workspace_name_key":
        raise DefinitionExists(name) from None
    raise exc


async def create(
    pool: asyncpg.Pool, box: SecretBox, ws: Workspace, draft: DefinitionDraft
) -> Definition:
    new_id = uuid.uuid4()
    try:
        created = await pool.fetchval(
            *bind("create_definition", id=new_id, workspace_id=ws.id, **_draft_values(box, draft))
        )
    except asyncpg.UniqueViolationError as exc:
        _raise_name_taken(exc, draft.name)
    return Definition(new_id, ws.name, 1, draft, created, created)


async def get(
    pool: asyncpg.Pool | asyncpg.Connection,
    box: SecretBox,
    ws: Workspace,
    ref: str,
    version: int = 0,
) -> Definition:
    row = await pool.fetchrow(q("get_definition"), ws.id, *_ref_args(ref), version)
    if row is None:
        raise DefinitionNotFound(ref if not version else f"{ref}@{version}")
    return _from_row(box, row)


async def update(
    pool: asyncpg.Pool,
    box: SecretBox,
    ws: Workspace,
    ref: str,
    change: Callable[[DefinitionDraft], DefinitionDraft],
    expected_version: int = 0,
) -> Definition:
    """Lock the definition, compute its next draft with `change`, and store it."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(q("lock_definition"), ws.id, *_ref_args(ref)) is None:
            raise DefinitionNotFound(ref)
        current = await get(conn, box, ws, ref)
        if expected_version and expected_version != current.version:
            raise Conflict(
                f"definition {ref!r} is at version {current.version}, not {expected_version}"
            )
        draft = change(current.draft)
        version = current.version + 1
        try:
            values = _draft_values(box, draft)
            row = await conn.fetchrow(
                *bind("add_definition_version", id=current.uuid, version=version, **values)
            )
        except asyncpg.UniqueViolationError as exc:
            _raise_name_taken(exc, draft.name)
    return Definition(current.uuid, ws.name, version, draft, row["created_at"], row["updated_at"])


async def delete(pool: asyncpg.Pool, ws: Workspace, ref: str) -> None:
    if await pool.fetchval(q("delete_definition"), ws.id, *_ref_args(ref)) is None:
        raise DefinitionNotFound(ref)


async def list_page(
    pool: asyncpg.Pool,
    box: SecretBox,
    ws: Workspace,
    *,
    after: tuple[str, UUID] | None,
    name_prefix: str,
    job_type: JobType | None,
    limit: int,
) -> list[Definition]:
    rows = await pool.fetch(
        *bind(
            "list_definitions",
            workspace_id=ws.id,
            after_name=after[0] if after else None,
            after_id=after[1] if after else None,
            name_prefix=name_prefix,
            job_type=job_type.value if job_type else None,
            limit=limit,
        )
    )
    return [_from_row(box, r) for r in rows]


async def get_current_many(
    pool: asyncpg.Pool, box: SecretBox, ws: Workspace, refs: list[str]
) -> dict[str, Definition | SecretsUnreadable]:
    """The current version of each definition named (by name or uuid); missing ones are
    absent, and one whose secrets this server cannot open is that error (so one such
    definition does not fail the others read with it)."""
    ids = [UUID(r) for r in refs if is_uuid_ref(r)]
    names = [r for r in refs if not is_uuid_ref(r)]
    rows = await pool.fetch(q("get_current_definitions"), ws.id, ids, names)
    by_ref: dict[str, Definition | SecretsUnreadable] = {}
    for row in rows:
        try:
            found: Definition | SecretsUnreadable = _from_row(box, row)
        except SecretsUnreadable as exc:
            found = exc
        by_ref[str(row["id"])] = by_ref[row["name"]] = found
    return {ref: by_ref[ref] for ref in refs if ref in by_ref}
