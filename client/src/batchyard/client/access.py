"""Synchronous clients for tokens, workspaces and the audit trail (admin tokens)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc
from google.protobuf import duration_pb2

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.errors import from_rpc_error
from batchyard.client.paging import paged
from batchyard.v1 import access_pb2, access_service_pb2_grpc
from batchyard.v1 import access_service_pb2 as pb

Token = access_pb2.Token
Workspace = access_pb2.Workspace
AuditEvent = access_pb2.AuditEvent
TokenRole = access_pb2.TokenRole

ROLES: dict[str, access_pb2.TokenRole.ValueType] = {
    "admin": access_pb2.TOKEN_ROLE_ADMIN,
    "member": access_pb2.TOKEN_ROLE_MEMBER,
    "viewer": access_pb2.TOKEN_ROLE_VIEWER,
    "worker": access_pb2.TOKEN_ROLE_WORKER,
}
MAX_PAGE_SIZE = 1000
R = TypeVar("R")


def _call(method: Callable[..., R], request: object, timeout: float) -> R:
    """One unary call, with the server's refusal as a typed error."""
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from exc


class TokensClient:
    """Create, list and revoke the API tokens of the caller's workspace.

    with connection.channel() as ch:
        made = TokensClient(ch).create("ci", "member", ttl=30 * 86400)
        print(made.secret)  # shown once
    """

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = access_service_pb2_grpc.TokenServiceStub(channel)
        self._timeout = timeout

    def create(
        self, name: str, role: str = "member", *, ttl: float | None = None
    ) -> pb.CreateTokenResponse:
        """A new token (its `secret` is in the response, and only there); `role` is one of
        admin, member, viewer, worker; `ttl` in seconds (None: no expiry)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        request = pb.CreateTokenRequest(name=name, role=ROLES[role])
        if ttl is not None:
            request.ttl.CopyFrom(duration_pb2.Duration(seconds=int(ttl), nanos=int(ttl % 1 * 1e9)))
        response: pb.CreateTokenResponse = _call(self._stub.CreateToken, request, self._timeout)
        return response

    def iter(
        self, *, show_inactive: bool = False, limit: int | None = None, page_size: int = 0
    ) -> Iterator[Token]:
        """The workspace's tokens, newest first (never their secrets)."""

        def fetch(size: int, token: str) -> pb.ListTokensResponse:
            request = pb.ListTokensRequest(
                page_size=size, page_token=token, show_inactive=show_inactive
            )
            response: pb.ListTokensResponse = _call(self._stub.ListTokens, request, self._timeout)
            return response

        return paged(
            fetch,
            lambda page: page.tokens,
            limit=limit,
            page_size=page_size,
            max_page_size=MAX_PAGE_SIZE,
        )

    def revoke(self, ref: str) -> Token:
        """Revokes the token with this uuid or prefix; it stops working at once."""
        request = pb.RevokeTokenRequest(token=ref)
        response: pb.RevokeTokenResponse = _call(self._stub.RevokeToken, request, self._timeout)
        return response.token


class WorkspacesClient:
    """Create and list workspaces (creating needs an admin token of `default`)."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = access_service_pb2_grpc.WorkspaceServiceStub(channel)
        self._timeout = timeout

    def create(self, name: str, admin_token_name: str = "") -> pb.CreateWorkspaceResponse:
        """A new workspace and its first admin token (`admin_secret`, shown once)."""
        request = pb.CreateWorkspaceRequest(name=name, admin_token_name=admin_token_name)
        response: pb.CreateWorkspaceResponse = _call(
            self._stub.CreateWorkspace, request, self._timeout
        )
        return response

    def iter(self, *, limit: int | None = None, page_size: int = 0) -> Iterator[Workspace]:
        """The workspaces the token may see, by name."""

        def fetch(size: int, token: str) -> pb.ListWorkspacesResponse:
            request = pb.ListWorkspacesRequest(page_size=size, page_token=token)
            response: pb.ListWorkspacesResponse = _call(
                self._stub.ListWorkspaces, request, self._timeout
            )
            return response

        return paged(
            fetch,
            lambda page: page.workspaces,
            limit=limit,
            page_size=page_size,
            max_page_size=MAX_PAGE_SIZE,
        )


class AuditClient:
    """The audit trail of the caller's workspace (admin tokens)."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._stub = access_service_pb2_grpc.AuditServiceStub(channel)
        self._timeout = timeout

    def iter(
        self, *, action: str = "", limit: int | None = None, page_size: int = 0
    ) -> Iterator[AuditEvent]:
        """Audit events, newest first; `action` keeps only one kind, e.g. "run.cancel"."""

        def fetch(size: int, token: str) -> pb.ListAuditEventsResponse:
            request = pb.ListAuditEventsRequest(page_size=size, page_token=token, action=action)
            response: pb.ListAuditEventsResponse = _call(
                self._stub.ListAuditEvents, request, self._timeout
            )
            return response

        return paged(
            fetch,
            lambda page: page.events,
            limit=limit,
            page_size=page_size,
            max_page_size=MAX_PAGE_SIZE,
        )
