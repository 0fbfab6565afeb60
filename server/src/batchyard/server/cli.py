"""`batchyard server` (run, migrate, bootstrap, rotate-secrets, new-secret-key), plugged
into the `batchyard` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import asyncpg
import structlog

from batchyard.config import Flag, SettingsError, add_flags, integer, resolve, text
from batchyard.server import settings as server_settings
from batchyard.server.app import resolve_database, run_migrations, serve
from batchyard.server.bootstrap import create_admin_token
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.pool import create_pool
from batchyard.server.db.sealing import Rotation, rotate
from batchyard.server.log_config import configure_logging
from batchyard.server.secret_keys import load_key_ring
from batchyard.server.secrets_crypto import SecretKeyError, new_key
from batchyard.server.tls import ListenError

T = TypeVar("T")

EXAMPLES = """\
examples:
  batchyard server                                   # embedded PostgreSQL in the user data dir
  batchyard server --listen 0.0.0.0:50051 --database-url postgresql://u:p@db/batchyard \
      --tls-cert server.pem --tls-key server.key     # other hosts: TLS, or --insecure
  batchyard server --listen 0.0.0.0:50051 --tls-cert server.pem --tls-key server.key \
      --tls-client-ca clients-ca.pem                 # ... and client certificates (mTLS)
  batchyard server migrate --database-url postgresql://u:p@db/batchyard
  batchyard server bootstrap --database-url postgresql://u:p@db/batchyard   # first admin token
  batchyard server rotate-secrets --database-url ...  # reseal secrets with the newest key
"""

ROTATE = """Reseal the job secrets stored in the database (secret env values, Git tokens, SQL DSNs
of every definition version and run configuration) with the first key of --secret-keys
or --secret-key-file. It works in batches of short statements, so servers keep serving,
and it can be run again at any time: rows already sealed with the first key are skipped.
With the embedded database, stop the server first (both would start its PostgreSQL).

Rotating the secret key:
  1. make a new key:    batchyard server new-secret-key --id k2
  2. on every server, put it first and keep the old key after it, then restart them
     (they seal with the new key and still open the old one):
                        BATCHYARD_SECRET_KEYS=k2:NEWKEY...,k1:OLDKEY...
  3. reseal what is stored, with the same keys:
                        batchyard server rotate-secrets --database-url ...
  4. remove the old key from every server and restart them.
Rows sealed with a key that is not given are reported, left as they are, and the
command exits 1: add that key after the first and run it again.
"""


TOKEN_NAME = Flag("token-name", text(), "the token's label", default="admin", flag_only=True)
BATCH_SIZE = Flag("batch-size", integer(1), "rows per statement", default=500, flag_only=True)
KEY_ID = Flag(
    "id",
    text(),
    "the key's id",
    default_from=lambda _env: time.strftime("k%Y%m%d"),
    default_text=time.strftime("k%Y%m%d"),
    flag_only=True,
)


@dataclass(frozen=True)
class Action:
    """A subcommand of `batchyard server`: its words, its own flags, its handler, and
    whether it takes the server's settings."""

    name: str
    help: str
    description: str
    epilog: str
    handler: Callable[[argparse.Namespace], int]
    flags: tuple[Flag[Any], ...] = ()
    settings: bool = True


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "server",
        help="run the Batchyard API server",
        description="Run the gRPC API server over PostgreSQL (embedded unless a URL is given). "
        "Stops gracefully on SIGTERM or Ctrl-C.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server_settings.add_arguments(parser)
    parser.set_defaults(handler=run_server)
    subparsers_of_server = parser.add_subparsers(dest="server_action", metavar="ACTION")
    for action in ACTIONS:
        sub = subparsers_of_server.add_parser(
            action.name,
            help=action.help,
            description=action.description,
            epilog=action.epilog or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if action.settings:
            server_settings.add_arguments(sub)
        add_flags(sub, action.flags)
        sub.set_defaults(handler=action.handler)


def _settings(args: argparse.Namespace) -> server_settings.ServerSettings:
    try:
        settings = server_settings.from_args(args)
    except ValueError as exc:
        _refuse(exc)
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _refuse(exc: Exception) -> NoReturn:
    print(f"batchyard server: {exc}", file=sys.stderr)
    raise SystemExit(2) from None


def _flag(flag: Flag[T], args: argparse.Namespace) -> T:
    """One command's own flag (no variable), or the command ends naming it."""
    try:
        return resolve([flag], args, {})[flag]
    except SettingsError as exc:
        _refuse(exc)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro`; a key problem ends the command with its message (never key bytes)."""
    try:
        return asyncio.run(coro)
    except SecretKeyError as exc:
        print(f"batchyard server: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ListenError as exc:
        print(f"batchyard server: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"batchyard server: {database_failure(exc)}", file=sys.stderr)
        raise SystemExit(1) from None


def database_failure(exc: BaseException) -> str:
    """One line for a database that cannot be used, with the fix (never the URL: it may
    hold a password)."""
    what = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot use the database ({type(exc).__name__}: {what}); check --database-url "
        "(or $BATCHYARD_DATABASE_URL / $DATABASE_URL): host, port, user, password, database"
    )


def run_server(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        return _run(serve(settings))
    except OSError as exc:
        structlog.get_logger(__name__).error("server_failed", error=str(exc))
        return 1


def run_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def migrate_once() -> list[int]:
        dsn, embedded = await resolve_database(settings)
        try:
            return await run_migrations(dsn, SecretBox(load_key_ring(settings)))
        finally:
            if embedded is not None:
                await embedded.stop()

    applied = _run(migrate_once())
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


def run_bootstrap(args: argparse.Namespace) -> int:
    settings = _settings(args)
    token_name = _flag(TOKEN_NAME, args)

    async def bootstrap_once() -> str:
        dsn, embedded = await resolve_database(settings)
        try:
            await run_migrations(dsn, SecretBox(load_key_ring(settings)))
            return await create_admin_token(dsn, token_name)
        finally:
            if embedded is not None:
                await embedded.stop()

    secret = _run(bootstrap_once())
    print(secret)
    print(
        "an admin token of the 'default' workspace; it is shown only now: keep it in "
        "$BATCHYARD_TOKEN or ~/.config/batchyard/token",
        file=sys.stderr,
    )
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    batch_size = _flag(BATCH_SIZE, args)

    async def rotate_once() -> tuple[SecretBox, Rotation]:
        box = SecretBox(load_key_ring(settings))
        dsn, embedded = await resolve_database(settings)
        try:
            await run_migrations(dsn, box)
            pool = await create_pool(dsn, min_size=1, max_size=1)
            try:
                return box, await rotate(pool, box, batch_size)
            finally:
                await pool.close()
        finally:
            if embedded is not None:
                await embedded.stop()

    box, done = _run(rotate_once())
    print(
        f"resealed with key {box.keys.primary!r}: {done.definition_versions} definition "
        f"versions, {done.run_configs} run configurations"
    )
    if done.dangling_runs:
        print(
            f"warning: {done.dangling_runs} runs have no stored configuration; was a server "
            "still sealing with an older first key?",
            file=sys.stderr,
        )
    if done.unreadable:
        found = ", ".join(f"{n} sealed with {k}" for k, n in sorted(done.unreadable.items()))
        print(
            f"could not open {found}: give that key (after the first) and run again",
            file=sys.stderr,
        )
        return 1
    return 0


def run_new_key(args: argparse.Namespace) -> int:
    key_id = _flag(KEY_ID, args)
    try:
        print(new_key(key_id).line())
    except SecretKeyError as exc:
        print(f"batchyard server: {exc}", file=sys.stderr)
        return 2
    return 0


ACTIONS = (
    Action(
        "migrate",
        "apply pending database migrations and exit",
        "Apply the pending forward-only migrations (under an advisory lock) and exit.",
        "examples:\n  batchyard server migrate --database-url postgresql://u:p@db/batchyard\n"
        "  batchyard server migrate --data-dir ~/batchyard/pg      # the embedded database",
        run_migrate,
    ),
    Action(
        "bootstrap",
        "create an admin token of the default workspace and print it once",
        "Apply pending migrations, create an admin token of the operator's "
        "workspace ('default') and print its secret on stdout, once (only its hash is "
        "kept). Use it to create workspaces and other tokens.",
        "examples:\n"
        "  batchyard server bootstrap --database-url postgresql://u:p@db/batchyard "
        "> admin-token\n"
        "  BATCHYARD_TOKEN=$(cat admin-token) batchyard workspaces create analytics",
        run_bootstrap,
        (TOKEN_NAME,),
    ),
    Action(
        "rotate-secrets",
        "reseal every stored secret with the first (newest) secret key",
        ROTATE,
        "",
        run_rotate,
        (BATCH_SIZE,),
    ),
    Action(
        "new-secret-key",
        "print a new random secret key as ID:BASE64KEY",
        "Print a new random 32-byte key as ID:BASE64KEY, for BATCHYARD_SECRET_KEYS or a "
        "key file (see `batchyard server rotate-secrets --help`).",
        "examples:\n  batchyard server new-secret-key --id k2\n"
        "  batchyard server new-secret-key > /etc/batchyard/secret-keys",
        run_new_key,
        (KEY_ID,),
        settings=False,
    ),
)
"""The subcommands of `batchyard server`, in the order --help lists them."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchyard.server")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(["server", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args))
