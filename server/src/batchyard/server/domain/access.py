"""Who may do what: roles, the permission each method needs, and API token secrets.

A token secret is ``byt_<12 hex>_<43 url-safe characters>``: the first part (the prefix) is
public and finds the token; the whole secret is checked against its stored SHA-256. A
secret carries 256 random bits, so a fast hash is safe (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from batchyard.server.domain.errors import FieldViolation

TOKEN_PREFIX = "byt_"  # noqa: S105 (the public start of every token)
_SECRET = re.compile(r"^(byt_[0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_WORKSPACE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_LABEL = re.compile(r"^[\x20-\x7e]{1,100}$")
MAX_TOKEN_TTL_SECONDS = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class Workspace:
    """A tenant: every definition, run, token and audit event belongs to one."""

    id: UUID
    name: str


class Role(StrEnum):
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"
    WORKER = "WORKER"


class Permission(StrEnum):
    READ = "read"
    """Read definitions, runs, logs and results."""
    WRITE = "write"
    """Create, change and delete definitions; submit, cancel and delete runs."""
    ADMIN = "admin"
    """Tokens, workspaces, the audit trail."""
    WORK = "work"
    """WorkerService: lease runs, heartbeat, logs, outcomes."""


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MEMBER: frozenset({Permission.READ, Permission.WRITE}),
    Role.VIEWER: frozenset({Permission.READ}),
    Role.WORKER: frozenset({Permission.WORK}),
}


@dataclass(frozen=True)
class Principal:
    """The caller, as its token says."""

    token_id: UUID
    token_name: str
    prefix: str
    role: Role
    workspace_id: UUID
    workspace: str

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    @property
    def actor(self) -> str:
        """How the audit trail names the caller."""
        return f"{self.token_name} ({self.prefix})"


@dataclass(frozen=True)
class TokenRecord:
    """A stored token (never its secret)."""

    id: UUID
    name: str
    role: Role
    prefix: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    workspace: str = ""


def new_secret() -> tuple[str, str]:
    """A fresh secret and its prefix."""
    prefix = TOKEN_PREFIX + secrets.token_hex(6)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


def secret_prefix(secret: str) -> str | None:
    """The prefix of a well-formed secret; None for anything else."""
    match = _SECRET.match(secret)
    return match[1] if match else None


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def workspace_name_problem(name: str) -> FieldViolation | None:
    if not _WORKSPACE.match(name):
        return FieldViolation(
            "name", "1 to 63 lowercase letters, digits and '-', starting with a letter"
        )
    return None


def token_name_problem(name: str, field: str = "name") -> FieldViolation | None:
    if not _LABEL.match(name):
        return FieldViolation(field, "1 to 100 printable ASCII characters")
    return None
