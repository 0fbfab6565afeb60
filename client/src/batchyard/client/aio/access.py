"""`client.tokens`, `client.workspaces` and `client.audit` of the asyncio face (admin
tokens): `batchyard.client.sync.access`, awaited."""

from __future__ import annotations

from batchyard.client.aio.call import AsyncCaller
from batchyard.client.aio.paging import AsyncPaged, alisting
from batchyard.client.core.part import Part
from batchyard.client.core.requests import (
    create_token_request,
    list_audit_events,
    list_tokens,
    list_workspaces,
)
from batchyard.v1 import (
    access_pb2,
    access_service_pb2_grpc,  # noqa: F401 (its Async stubs, quoted above: typing only)
)
from batchyard.v1 import access_service_pb2 as apb


class AsyncTokens(Part["access_service_pb2_grpc.TokenServiceAsyncStub", AsyncCaller]):
    """`client.tokens` of the asyncio client (see `Tokens`)."""

    async def create(
        self, name: str, role: str = "member", *, ttl: float | None = None
    ) -> apb.CreateTokenResponse:
        """A new token: `secret` (shown only here) and `token`; `role` is admin, member,
        viewer or worker; `ttl` in seconds (None: no expiry)."""
        return await self._call(self._stub.CreateToken, create_token_request(name, role, ttl))

    def list(
        self, *, show_inactive: bool = False, limit: int | None = None, page_size: int = 0
    ) -> AsyncPaged[access_pb2.Token]:
        """The tokens, newest first (never their secrets); revoked and expired ones too
        with `show_inactive`."""
        return alisting(
            self._call,
            self._stub.ListTokens,
            list_tokens(show_inactive),
            limit=limit,
            page_size=page_size,
        )

    async def revoke(self, ref: str) -> access_pb2.Token:
        """Revoke the token with this uuid or prefix: it stops working at once."""
        return (await self._call(self._stub.RevokeToken, apb.RevokeTokenRequest(token=ref))).token


class AsyncWorkspaces(Part["access_service_pb2_grpc.WorkspaceServiceAsyncStub", AsyncCaller]):
    """`client.workspaces` of the asyncio client (see `Workspaces`)."""

    async def create(self, name: str, admin_token_name: str = "") -> apb.CreateWorkspaceResponse:
        """A new workspace and its first admin token (`admin_secret`, shown only here)."""
        request = apb.CreateWorkspaceRequest(name=name, admin_token_name=admin_token_name)
        return await self._call(self._stub.CreateWorkspace, request)

    def list(
        self, *, limit: int | None = None, page_size: int = 0
    ) -> AsyncPaged[access_pb2.Workspace]:
        """The workspaces the token may see, by name."""
        return alisting(
            self._call,
            self._stub.ListWorkspaces,
            list_workspaces(),
            limit=limit,
            page_size=page_size,
        )


class AsyncAudit(Part["access_service_pb2_grpc.AuditServiceAsyncStub", AsyncCaller]):
    """`client.audit` of the asyncio client (see `Audit`)."""

    def list(
        self, *, action: str = "", limit: int | None = None, page_size: int = 0
    ) -> AsyncPaged[access_pb2.AuditEvent]:
        """Audit events, newest first; `action` keeps one kind, e.g. "run.cancel"."""
        return alisting(
            self._call,
            self._stub.ListAuditEvents,
            list_audit_events(action),
            limit=limit,
            page_size=page_size,
        )
