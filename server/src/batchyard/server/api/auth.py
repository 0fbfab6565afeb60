"""Authentication and authorization of every call.

The caller's token comes from the metadata ``authorization: Bearer <secret>``; it decides
the workspace (never the request) and the role. Each method needs one permission
(:data:`PERMISSIONS`, checked at start-up to cover every method of every service, so a new
RPC cannot be left open). The principal is kept in a context variable for the call.

Valid tokens are cached for CACHE_SECONDS (never beyond their expiry): a revocation takes
effect at once on the server that revoked it, and within CACHE_SECONDS on other replicas.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

import grpc
import structlog
from google.protobuf.descriptor import ServiceDescriptor

from batchyard.server.api.audit import AuditLog
from batchyard.server.db import access as store
from batchyard.server.db.pool import Pool
from batchyard.server.domain.access import (
    Permission,
    Principal,
    secret_hash,
    secret_matches,
    secret_prefix,
)
from batchyard.server.domain.errors import PermissionDenied, Unauthenticated

CACHE_SECONDS = 2.0
MAX_CACHE = 10_000
log = structlog.get_logger("batchyard.server.auth")

READ, WRITE, ADMIN, WORK = Permission.READ, Permission.WRITE, Permission.ADMIN, Permission.WORK
PERMISSIONS: dict[str, dict[str, Permission]] = {
    "batchyard.v1.DefinitionService": {
        "CreateDefinition": WRITE,
        "GetDefinition": READ,
        "ListDefinitions": READ,
        "UpdateDefinition": WRITE,
        "DeleteDefinition": WRITE,
    },
    "batchyard.v1.RunService": {
        "SubmitRun": WRITE,
        "BatchSubmitRuns": WRITE,
        "GetRun": READ,
        "ListRuns": READ,
        "CancelRun": WRITE,
        "DeleteRun": WRITE,
        "WatchRun": READ,
        "ListRunResults": READ,
        "DownloadRunResult": READ,
    },
    "batchyard.v1.LogService": {"GetLogs": READ, "TailLogs": READ},
    "batchyard.v1.WorkerService": {
        "LeaseRuns": WORK,
        "RenewLease": WORK,
        "AppendLogs": WORK,
        "CompleteRun": WORK,
        "ReleaseRun": WORK,
        "WaitForCancel": WORK,
    },
    "batchyard.v1.TokenService": {"CreateToken": ADMIN, "ListTokens": ADMIN, "RevokeToken": ADMIN},
    "batchyard.v1.WorkspaceService": {"CreateWorkspace": ADMIN, "ListWorkspaces": READ},
    "batchyard.v1.AuditService": {"ListAuditEvents": ADMIN},
    "batchyard.v1.QueueService": {
        "CreateQueue": WRITE,
        "GetQueue": READ,
        "ListQueues": READ,
        "UpdateQueue": WRITE,
        "DeleteQueue": WRITE,
    },
    "batchyard.v1.ScheduleService": {
        "CreateSchedule": WRITE,
        "GetSchedule": READ,
        "ListSchedules": READ,
        "UpdateSchedule": WRITE,
        "DeleteSchedule": WRITE,
        "PauseSchedule": WRITE,
        "ResumeSchedule": WRITE,
        "TriggerSchedule": WRITE,
    },
    "batchyard.v1.RetentionService": {
        "GetRetentionPolicy": READ,
        "SetRetentionPolicy": ADMIN,
        "DeleteRuns": WRITE,
    },
    "batchyard.v1.FleetService": {"ListWorkers": READ, "GetWorker": READ},
}

_principal: ContextVar[Principal | None] = ContextVar("batchyard_principal", default=None)


def current_principal() -> Principal:
    """The caller of the call being served."""
    principal = _principal.get()
    if principal is None:  # a method served without the guard: a programming error
        raise Unauthenticated("no credentials")
    return principal


def check_coverage(services: list[ServiceDescriptor]) -> None:
    """Every method of every served service has a permission (else: refuse to start)."""
    missing = [
        f"{s.full_name}/{m.name}"
        for s in services
        for m in s.methods
        if m.name not in PERMISSIONS.get(s.full_name, {})
    ]
    if missing:
        raise RuntimeError(f"methods without a permission: {', '.join(missing)}")


def _bearer(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, secret = value.partition(" ")
            return secret.strip() if scheme.lower() == "bearer" else None
    return None


class Authenticator:
    """Turns a call's metadata into its principal, and checks the method's permission."""

    def __init__(self, pool: Pool, audit: AuditLog) -> None:
        self._pool = pool
        self._audit = audit
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._permissions: dict[str, Permission] = {}

    def forget(self, prefix: str) -> None:
        """Drops cached entries of a token (revoked)."""
        for key, (principal, _) in list(self._cache.items()):
            if principal.prefix == prefix:
                del self._cache[key]

    def admit(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> bool:
        """The fast path of every call: a token seen in the last CACHE_SECONDS is admitted
        here, synchronously (True); False: await the guard (unknown token, or refused)."""
        secret = _bearer(context)
        cached = self._cache.get(secret_hash(secret)) if secret else None
        if cached is None or cached[1] <= time.monotonic():
            return False
        principal = cached[0]
        if not principal.may(self._permission(method)):
            return False  # the guard refuses, with its message
        _principal.set(principal)
        return True

    def _permission(self, method: str) -> Permission:
        permission = self._permissions.get(method)
        if permission is None:
            service, _, name = method.strip("/").partition("/")
            permission = self._permissions[method] = PERMISSIONS[service][name]
        return permission

    async def __call__(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> Principal:
        """The guard of every call: `method` is "/package.Service/Method"."""
        return await self.guard(context, self._permission(method), method)

    async def guard(
        self, context: grpc.aio.ServicerContext[Any, Any], permission: Permission, method: str
    ) -> Principal:
        principal = await self._authenticate(context, method)
        if not principal.may(permission):
            raise PermissionDenied(
                f"a {principal.role.value.lower()} token may not call {method.rsplit('/', 1)[-1]}"
            )
        _principal.set(principal)
        return principal

    async def _authenticate(
        self, context: grpc.aio.ServicerContext[Any, Any], method: str
    ) -> Principal:
        secret = _bearer(context)
        if not secret:
            raise Unauthenticated("missing credentials: send 'authorization: Bearer <token>'")
        key = secret_hash(secret)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        prefix = secret_prefix(secret)
        stored = await store.token_by_prefix(self._pool, prefix) if prefix else None
        if stored is None or not secret_matches(secret, stored.secret_hash):
            if stored is not None:  # someone holds a real prefix with a wrong secret
                self._audit_failure(stored.principal, method, "wrong secret")
            log.warning("auth_failed", method=method, prefix=prefix or "", why="invalid token")
            raise Unauthenticated("invalid token")
        if stored.revoked or stored.expired:
            why = "revoked" if stored.revoked else "expired"
            self._audit_failure(stored.principal, method, f"token {why}")
            log.warning("auth_failed", method=method, prefix=prefix, why=why)
            raise Unauthenticated(f"token {why}")
        until = now + CACHE_SECONDS
        if stored.expires_at is not None:
            until = min(until, now + (stored.expires_at.timestamp() - time.time()))
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        self._cache[key] = (stored.principal, until)
        return stored.principal

    def _audit_failure(self, principal: Principal, method: str, why: str) -> None:
        self._audit.record(principal, "auth.failed", "token", principal.prefix, f"{method}: {why}")
