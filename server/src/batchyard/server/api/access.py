"""TokenService, WorkspaceService and AuditService: who may act, and what they did."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import grpc

from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import Authenticator, current_principal
from batchyard.server.api.job_convert import seconds, timestamp
from batchyard.server.api.workspaces import DEFAULT_WORKSPACE
from batchyard.server.db import access as store
from batchyard.server.db.pool import Pool
from batchyard.server.domain import paging
from batchyard.server.domain.access import (
    MAX_TOKEN_TTL_SECONDS,
    Role,
    TokenRecord,
    Workspace,
    token_name_problem,
    workspace_name_problem,
)
from batchyard.server.domain.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from batchyard.v1 import access_pb2, access_service_pb2_grpc
from batchyard.v1 import access_service_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class TokenNotFound(NotFound):
    reason = "TOKEN_NOT_FOUND"

    def __init__(self, ref: str) -> None:
        super().__init__(f"token {ref!r} not found")


class WorkspaceExists(AlreadyExists):
    reason = "WORKSPACE_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"a workspace named {name!r} already exists")


def role_from_pb(value: int) -> Role | None:
    name = access_pb2.TokenRole.Name(value) if value in access_pb2.TokenRole.values() else ""  # type: ignore[arg-type]
    return Role(name.removeprefix("TOKEN_ROLE_")) if value and name else None


def token_to_pb(token: TokenRecord) -> access_pb2.Token:
    return access_pb2.Token(
        uuid=str(token.id),
        name=token.name,
        workspace=token.workspace,
        role=access_pb2.TokenRole.Value(f"TOKEN_ROLE_{token.role.value}"),
        prefix=token.prefix,
        create_time=timestamp(token.created_at),
        expire_time=timestamp(token.expires_at),
        revoke_time=timestamp(token.revoked_at),
        created_by=token.created_by,
    )


def _workspace(principal: Any) -> Workspace:
    return Workspace(principal.workspace_id, principal.workspace)


class TokenServicer(access_service_pb2_grpc.TokenServiceServicer):
    def __init__(self, pool: Pool, audit: AuditLog, authenticator: Authenticator) -> None:
        self._pool = pool
        self._audit = audit
        self._authenticator = authenticator

    async def CreateToken(
        self, request: pb.CreateTokenRequest, context: Context
    ) -> pb.CreateTokenResponse:
        principal = current_principal()
        violations = []
        if (problem := token_name_problem(request.name)) is not None:
            violations.append(problem)
        role = role_from_pb(request.role)
        if role is None:
            violations.append(FieldViolation("role", "required: ADMIN, MEMBER, VIEWER or WORKER"))
        ttl = seconds(request.ttl) if request.HasField("ttl") else None
        if ttl is not None and not 1 <= ttl <= MAX_TOKEN_TTL_SECONDS:
            violations.append(FieldViolation("ttl", "1 second to 10 years"))
        if violations:
            raise InvalidArgument(violations)
        assert role is not None
        token, secret = await store.create_token(
            self._pool,
            _workspace(principal),
            request.name,
            role,
            created_by=principal.token_name,
            ttl_seconds=ttl,
        )
        self._audit.record(
            principal, "token.create", "token", token.prefix, f"{token.name}, {role.value}"
        )
        return pb.CreateTokenResponse(token=token_to_pb(token), secret=secret)

    async def ListTokens(
        self, request: pb.ListTokensRequest, context: Context
    ) -> pb.ListTokensResponse:
        principal = current_principal()
        size = paging.page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)
        fingerprint = {"inactive": request.show_inactive}
        key = paging.decode(request.page_token, fingerprint)
        after = None
        if key:
            try:
                after = (datetime.fromisoformat(str(key[0])), UUID(str(key[1])))
            except (ValueError, IndexError) as exc:
                raise InvalidArgument([FieldViolation("page_token", "malformed")]) from exc
        tokens = await store.list_tokens(
            self._pool, _workspace(principal), after, size, request.show_inactive
        )
        token = ""
        if len(tokens) == size:
            last = tokens[-1]
            token = paging.encode([last.created_at.isoformat(), str(last.id)], fingerprint)
        return pb.ListTokensResponse(tokens=[token_to_pb(t) for t in tokens], next_page_token=token)

    async def RevokeToken(
        self, request: pb.RevokeTokenRequest, context: Context
    ) -> pb.RevokeTokenResponse:
        principal = current_principal()
        ref = request.token.strip()
        if not ref:
            raise InvalidArgument([FieldViolation("token", "required: a token uuid or prefix")])
        try:
            token_id: UUID | None = UUID(ref)
        except ValueError:
            token_id = None
        revoked = await store.revoke_token(self._pool, _workspace(principal), token_id, ref)
        if revoked is None:
            raise TokenNotFound(ref)
        self._authenticator.forget(revoked.prefix)
        self._audit.record(principal, "token.revoke", "token", revoked.prefix, revoked.name)
        return pb.RevokeTokenResponse(token=token_to_pb(revoked))


class WorkspaceServicer(access_service_pb2_grpc.WorkspaceServiceServicer):
    def __init__(self, pool: Pool, audit: AuditLog) -> None:
        self._pool = pool
        self._audit = audit

    async def CreateWorkspace(
        self, request: pb.CreateWorkspaceRequest, context: Context
    ) -> pb.CreateWorkspaceResponse:
        principal = current_principal()
        if principal.workspace != DEFAULT_WORKSPACE:
            raise PermissionDenied(
                f"only admins of the {DEFAULT_WORKSPACE!r} workspace create workspaces"
            )
        violations = []
        if (problem := workspace_name_problem(request.name)) is not None:
            violations.append(problem)
        token_name = request.admin_token_name or "admin"
        if (problem := token_name_problem(token_name, "admin_token_name")) is not None:
            violations.append(problem)
        if violations:
            raise InvalidArgument(violations)
        async with self._pool.acquire() as conn, conn.transaction():
            created = await store.create_workspace(conn, request.name)
            if created is None:
                raise WorkspaceExists(request.name)
            workspace = Workspace(created.id, created.name)
            token, secret = await store.create_token(
                conn, workspace, token_name, Role.ADMIN, created_by=principal.token_name
            )
        self._audit.record(principal, "workspace.create", "workspace", created.name)
        self._audit.record_in(
            created.id, principal.actor, "token.create", "token", token.prefix, "first admin"
        )
        return pb.CreateWorkspaceResponse(
            workspace=access_pb2.Workspace(
                name=created.name, create_time=timestamp(created.created_at)
            ),
            admin_token=token_to_pb(token),
            admin_secret=secret,
        )

    async def ListWorkspaces(
        self, request: pb.ListWorkspacesRequest, context: Context
    ) -> pb.ListWorkspacesResponse:
        principal = current_principal()
        size = paging.page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)
        key = paging.decode(request.page_token, {})
        operator = principal.workspace == DEFAULT_WORKSPACE and principal.role == Role.ADMIN
        found = await store.list_workspaces(
            self._pool,
            str(key[0]) if key else "",
            size,
            None if operator else principal.workspace_id,
        )
        token = paging.encode([found[-1].name], {}) if len(found) == size else ""
        return pb.ListWorkspacesResponse(
            workspaces=[
                access_pb2.Workspace(name=w.name, create_time=timestamp(w.created_at))
                for w in found
            ],
            next_page_token=token,
        )


class AuditServicer(access_service_pb2_grpc.AuditServiceServicer):
    def __init__(self, pool: Pool, audit: AuditLog) -> None:
        self._pool = pool
        self._audit = audit

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        principal = current_principal()
        size = paging.page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)
        fingerprint = {"action": request.action}
        key = paging.decode(request.page_token, fingerprint)
        await self._audit.flush()  # what this server recorded so far is readable now
        events = await store.list_audit_events(
            self._pool, _workspace(principal), int(key[0]) if key else 0, size, request.action
        )
        token = paging.encode([events[-1].id], fingerprint) if len(events) == size else ""
        return pb.ListAuditEventsResponse(
            events=[
                access_pb2.AuditEvent(
                    id=e.id,
                    time=timestamp(e.at),
                    actor=e.actor,
                    action=e.action,
                    object_kind=e.object_kind,
                    object_id=e.object_id,
                    detail=e.detail,
                )
                for e in events
            ],
            next_page_token=token,
        )
