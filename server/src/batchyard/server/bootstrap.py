"""The first admin token, and `batchyard dev`'s local one.

`batchyard server bootstrap` creates an admin token of the operator's workspace
("default") and prints it once; `batchyard dev` keeps one in a user-only file that the CLI
finds by itself (so the quick start needs no token handling).
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import platformdirs

from batchyard.server.db import access
from batchyard.server.db.definitions import workspace_by_name
from batchyard.server.domain.access import Role, secret_matches, secret_prefix

OPERATOR_WORKSPACE = "default"


def dev_token_file() -> Path:
    """Where `batchyard dev` leaves its admin token (the CLI looks there for a server on
    this machine): ``$XDG_CONFIG_HOME/batchyard/dev-token``."""
    return Path(platformdirs.user_config_dir("batchyard")) / "dev-token"


async def create_admin_token(dsn: str, name: str = "admin", role: Role = Role.ADMIN) -> str:
    """A new token of the operator's workspace; returns its secret."""
    conn = await asyncpg.connect(dsn)
    try:
        workspace = await workspace_by_name(conn, OPERATOR_WORKSPACE)
        if workspace is None:
            raise RuntimeError("the default workspace is missing: run the migrations first")
        _, secret = await access.create_token(conn, workspace, name, role)
        return secret
    finally:
        await conn.close()


async def token_is_valid(dsn: str, secret: str) -> bool:
    """Whether `secret` is an active token of this database."""
    prefix = secret_prefix(secret)
    if prefix is None:
        return False
    conn = await asyncpg.connect(dsn)
    try:
        stored = await access.token_by_prefix(conn, prefix)
    finally:
        await conn.close()
    return (
        stored is not None
        and secret_matches(secret, stored.secret_hash)
        and not (stored.revoked or stored.expired)
    )


async def dev_token(dsn: str, path: Path | None = None) -> str:
    """The dev admin token: the one in the file if this database knows it, else a new one
    written there (mode 0600)."""
    path = path or dev_token_file()
    try:
        existing = path.read_text().strip()
    except OSError:
        existing = ""
    if existing and await token_is_valid(dsn, existing):
        return existing
    secret = await create_admin_token(dsn, "batchyard-dev")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    scratch = path.with_name(f".{path.name}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    scratch.replace(path)
    return secret
