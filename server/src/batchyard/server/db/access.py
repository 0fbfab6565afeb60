"""Typed queries for tokens, workspaces and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from batchyard.server.db.sql import bind, q
from batchyard.server.domain.access import (
    Principal,
    Role,
    TokenRecord,
    Workspace,
    new_secret,
    secret_hash,
)


@dataclass(frozen=True)
class StoredToken:
    """What authentication needs to know about a token."""

    principal: Principal
    secret_hash: bytes
    expires_at: datetime | None
    revoked: bool
    expired: bool


def _record(row: asyncpg.Record, workspace: str = "") -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        prefix=row["prefix"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        workspace=workspace,
    )


async def token_by_prefix(
    pool: asyncpg.Pool | asyncpg.Connection, prefix: str
) -> StoredToken | None:
    row = await pool.fetchrow(q("token_by_prefix"), prefix)
    if row is None:
        return None
    principal = Principal(
        token_id=row["id"],
        token_name=row["name"],
        prefix=row["prefix"],
        role=Role(row["role"]),
        workspace_id=row["workspace_id"],
        workspace=row["workspace"],
    )
    return StoredToken(
        principal=principal,
        secret_hash=bytes(row["secret_hash"]),
        expires_at=row["expires_at"],
        revoked=row["revoked_at"] is not None,
        expired=row["expired"],
    )


async def create_token(
    conn: asyncpg.Pool | asyncpg.Connection,
    workspace: Workspace,
    name: str,
    role: Role,
    *,
    created_by: str = "",
    ttl_seconds: float | None = None,
) -> tuple[TokenRecord, str]:
    """A new token and its secret (the only time the secret exists outside the caller)."""
    secret, prefix = new_secret()
    row = await conn.fetchrow(
        *bind(
            "insert_token",
            id=uuid4(),
            workspace_id=workspace.id,
            name=name,
            role=role.value,
            prefix=prefix,
            secret_hash=secret_hash(secret),
            created_by=created_by,
            ttl_seconds=ttl_seconds,
        )
    )
    return _record(row, workspace.name), secret


async def list_tokens(
    pool: asyncpg.Pool,
    workspace: Workspace,
    after: tuple[datetime, UUID] | None,
    limit: int,
    show_inactive: bool,
) -> list[TokenRecord]:
    rows = await pool.fetch(
        *bind(
            "list_tokens",
            workspace_id=workspace.id,
            after_created=after[0] if after else None,
            after_id=after[1] if after else None,
            limit=limit,
            show_inactive=show_inactive,
        )
    )
    return [_record(r, workspace.name) for r in rows]


async def revoke_token(
    pool: asyncpg.Pool, workspace: Workspace, token_id: UUID | None, prefix: str
) -> TokenRecord | None:
    row = await pool.fetchrow(q("revoke_token"), workspace.id, token_id, prefix)
    return _record(row, workspace.name) if row else None


async def count_tokens(pool: asyncpg.Pool | asyncpg.Connection) -> int:
    count: int = await pool.fetchval(q("count_tokens"))
    return count


@dataclass(frozen=True)
class WorkspaceRecord:
    id: UUID
    name: str
    created_at: datetime


async def create_workspace(conn: asyncpg.Connection, name: str) -> WorkspaceRecord | None:
    """None: the name is taken."""
    row = await conn.fetchrow(q("insert_workspace"), name)
    return WorkspaceRecord(row["id"], row["name"], row["created_at"]) if row else None


async def list_workspaces(
    pool: asyncpg.Pool, after: str, limit: int, only: UUID | None
) -> list[WorkspaceRecord]:
    rows = await pool.fetch(q("list_workspaces"), after, limit, only)
    return [WorkspaceRecord(r["id"], r["name"], r["created_at"]) for r in rows]


@dataclass(frozen=True)
class AuditEvent:
    workspace_id: UUID
    at: datetime
    actor: str
    action: str
    object_kind: str
    object_id: str
    detail: str = ""
    id: int = 0


async def insert_audit_events(pool: asyncpg.Pool, events: Sequence[AuditEvent]) -> None:
    await pool.execute(
        *bind(
            "insert_audit_events",
            workspace_ids=[e.workspace_id for e in events],
            ats=[e.at for e in events],
            actors=[e.actor for e in events],
            actions=[e.action for e in events],
            object_kinds=[e.object_kind for e in events],
            object_ids=[e.object_id for e in events],
            details=[e.detail for e in events],
        )
    )


async def list_audit_events(
    pool: asyncpg.Pool, workspace: Workspace, before: int, limit: int, action: str
) -> list[AuditEvent]:
    rows = await pool.fetch(q("list_audit_events"), workspace.id, before, limit, action)
    return [
        AuditEvent(
            workspace_id=workspace.id,
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            object_kind=r["object_kind"],
            object_id=r["object_id"],
            detail=r["detail"],
            id=r["id"],
        )
        for r in rows
    ]
