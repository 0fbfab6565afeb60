"""`batchyard server` (run, migrate), plugged into the `batchyard` command."""

from __future__ import annotations

import argparse
import asyncio
import sys

import structlog

from batchyard.server import settings as server_settings
from batchyard.server.app import resolve_database, run_migrations, serve
from batchyard.server.bootstrap import create_admin_token
from batchyard.server.log_config import configure_logging

EXAMPLES = """\
examples:
  batchyard server                                   # embedded PostgreSQL in the user data dir
  batchyard server --listen 0.0.0.0:50051 --database-url postgresql://u:p@db/batchyard
  batchyard server migrate --database-url postgresql://u:p@db/batchyard
  batchyard server bootstrap --database-url postgresql://u:p@db/batchyard   # first admin token
"""


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
    actions = parser.add_subparsers(dest="server_action", metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        help="apply pending database migrations and exit",
        description="Apply the pending forward-only migrations (under an advisory lock) and exit.",
    )
    server_settings.add_arguments(migrate)
    migrate.set_defaults(handler=run_migrate)
    bootstrap = actions.add_parser(
        "bootstrap",
        help="create an admin token of the default workspace and print it once",
        description="Apply pending migrations, create an admin token of the operator's "
        "workspace ('default') and print its secret on stdout, once (only its hash is "
        "kept). Use it to create workspaces and other tokens.",
    )
    server_settings.add_arguments(bootstrap)
    bootstrap.add_argument(
        "--token-name", default="admin", help="the token's label (default %(default)s)"
    )
    bootstrap.set_defaults(handler=run_bootstrap)


def _settings(args: argparse.Namespace) -> server_settings.ServerSettings:
    try:
        settings = server_settings.from_args(args)
    except ValueError as exc:
        print(f"batchyard server: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_format, settings.log_level)
    return settings


def run_server(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        asyncio.run(serve(settings))
    except OSError as exc:
        structlog.get_logger(__name__).error("server_failed", error=str(exc))
        return 1
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def migrate_once() -> list[int]:
        dsn, embedded = await resolve_database(settings)
        try:
            return await run_migrations(dsn)
        finally:
            if embedded is not None:
                await embedded.stop()

    applied = asyncio.run(migrate_once())
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


def run_bootstrap(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def bootstrap_once() -> str:
        dsn, embedded = await resolve_database(settings)
        try:
            await run_migrations(dsn)
            return await create_admin_token(dsn, args.token_name)
        finally:
            if embedded is not None:
                await embedded.stop()

    secret = asyncio.run(bootstrap_once())
    print(secret)
    print(
        "an admin token of the 'default' workspace; it is shown only now: keep it in "
        "$BATCHYARD_TOKEN or ~/.config/batchyard/token",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchyard.server")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(["server", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args))
