"""`batchyard dev`'s SQL sandbox: a database and login role of their own on the embedded
PostgreSQL, handed to the dev worker as the SQL target `sandbox`.

SQL jobs never get the service's database or credentials: the sandbox role owns only its
database, and its password is new at every start (it travels to the worker in the
environment, never in argv).
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from batchyard.server.db.sql import q

SANDBOX = "sandbox"
ROLE = "batchyard_sandbox"


async def ensure_sandbox(admin_dsn: str, service_database: str) -> str:
    """Creates (or reuses) the sandbox database and role, and closes the service's database
    to every role but its owner's; returns the sandbox's DSN."""
    password = secrets.token_urlsafe(24)
    conn = await asyncpg.connect(admin_dsn)
    try:
        verb = "set_role_password" if await conn.fetchval(q("role_exists"), ROLE) else None
        statement = await conn.fetchval(q(verb or "create_login_role"), ROLE, password)
        await conn.execute(statement)
        await conn.execute(await conn.fetchval(q("revoke_public_connect"), service_database))
        if not await conn.fetchval(q("database_exists"), SANDBOX):
            await conn.execute(await conn.fetchval(q("create_owned_database"), SANDBOX, ROLE))
    finally:
        await conn.close()
    parts = urlsplit(admin_dsn)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{ROLE}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{SANDBOX}"))
