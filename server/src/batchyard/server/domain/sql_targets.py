"""SQL jobs never get the service's own database or credentials.

A job's DSN (a write-only secret) is compared with the server's own connection: the same
database (host or socket directory, port, database name) or the same server with the
service's user and password is refused. Loopback names count as one host.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from batchyard.server.domain.errors import FieldViolation
from batchyard.server.domain.jobs import JobConfig, JobType, Secrets

DEFAULT_PORT = 5432
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]", ""}


@dataclass(frozen=True)
class DatabaseIdentity:
    """Where a DSN points and as whom."""

    hosts: frozenset[tuple[str, int]]
    database: str
    user: str
    password: str

    def same_database(self, other: DatabaseIdentity) -> bool:
        return self.database == other.database and bool(self.hosts & other.hosts)

    def same_credentials(self, other: DatabaseIdentity) -> bool:
        return (
            bool(self.hosts & other.hosts)
            and self.user == other.user
            and self.password == other.password
        )


def _host(name: str) -> str:
    name = name.strip().lower()
    if name in _LOOPBACK or name.startswith("127."):
        return "loopback"
    return name.rstrip("/")


def identity_of(dsn: str) -> DatabaseIdentity | None:
    """The identity of a postgres:// URL DSN; None when it cannot be read as one."""
    try:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        user = unquote(parts.username or "") or query.get("user", [""])[0]
        password = unquote(parts.password or "") or query.get("password", [""])[0]
        database = unquote(parts.path.lstrip("/")) or query.get("dbname", [""])[0] or user
        netloc_hosts = parts.netloc.rpartition("@")[2]
        names = [h for h in netloc_hosts.split(",") if h] or query.get("host", [""])[0].split(",")
        port_param = query.get("port", [""])[0]
        hosts = set()
        for entry in names:
            host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            hosts.add((_host(host), int(port or port_param or DEFAULT_PORT)))
    except ValueError:
        return None
    return DatabaseIdentity(frozenset(hosts), database, user, password)


def service_database_violations(
    config: JobConfig, secrets: Secrets, service: DatabaseIdentity | None
) -> list[FieldViolation]:
    """A SQL or INGEST job's DSN may not name the service's database, nor use its credentials."""
    if service is None or config.type not in (JobType.SQL, JobType.INGEST) or not secrets.sql_dsn:
        return []
    target = identity_of(secrets.sql_dsn)
    if target is None:
        return []
    if target.same_database(service):
        return [FieldViolation("sql_target.dsn", "must not name the service's own database")]
    if target.same_credentials(service):
        return [FieldViolation("sql_target.dsn", "must not use the service's credentials")]
    return []
