"""`client.tokens`, `client.workspaces` and `client.audit` of the synchronous face
(admin tokens)."""

from __future__ import annotations

from batchyard.client.core.part import Part
from batchyard.client.core.requests import (
    create_token_request,
    list_audit_events,
    list_tokens,
    list_workspaces,
)
from batchyard.client.sync.call import Caller
from batchyard.client.sync.paging import Paged, listing
from batchyard.v1 import access_pb2, access_service_pb2, access_service_pb2_grpc
from batchyard.v1 import access_service_pb2 as apb


class Tokens(Part[access_service_pb2_grpc.TokenServiceStub, Caller]):
    """`client.tokens`: the API tokens of the caller's workspace (admin tokens)."""

    def create(
        self, name: str, role: str = "member", *, ttl: float | None = None
    ) -> access_service_pb2.CreateTokenResponse:
        """A new token: `secret` (shown only here) and `token`; `role` is admin, member,
        viewer or worker; `ttl` in seconds (None: no expiry)."""
        return self._call(self._stub.CreateToken, create_token_request(name, role, ttl))

    def list(
        self, *, show_inactive: bool = False, limit: int | None = None, page_size: int = 0
    ) -> Paged[access_pb2.Token]:
        """The tokens, newest first (never their secrets); revoked and expired ones too
        with `show_inactive`."""
        return listing(
            self._call,
            self._stub.ListTokens,
            list_tokens(show_inactive),
            limit=limit,
            page_size=page_size,
        )

    def revoke(self, ref: str) -> access_pb2.Token:
        """Revoke the token with this uuid or prefix: it stops working at once."""
        return self._call(self._stub.RevokeToken, apb.RevokeTokenRequest(token=ref)).token


class Workspaces(Part[access_service_pb2_grpc.WorkspaceServiceStub, Caller]):
    """`client.workspaces`: create and list workspaces (admins of `default`)."""

    def create(
        self, name: str, admin_token_name: str = ""
    ) -> access_service_pb2.CreateWorkspaceResponse:
        """A new workspace and its first admin token (`admin_secret`, shown only here)."""
        request = apb.CreateWorkspaceRequest(name=name, admin_token_name=admin_token_name)
        return self._call(self._stub.CreateWorkspace, request)

    def list(self, *, limit: int | None = None, page_size: int = 0) -> Paged[access_pb2.Workspace]:
        """The workspaces the token may see, by name."""
        return listing(
            self._call,
            self._stub.ListWorkspaces,
            list_workspaces(),
            limit=limit,
            page_size=page_size,
        )


class Audit(Part[access_service_pb2_grpc.AuditServiceStub, Caller]):
    """`client.audit`: the audit trail of the caller's workspace (admin tokens)."""

    def list(
        self, *, action: str = "", limit: int | None = None, page_size: int = 0
    ) -> Paged[access_pb2.AuditEvent]:
        """Audit events, newest first; `action` keeps one kind, e.g. "run.cancel"."""
        return listing(
            self._call,
            self._stub.ListAuditEvents,
            list_audit_events(action),
            limit=limit,
            page_size=page_size,
        )
