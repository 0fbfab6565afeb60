"""`batchyard tokens`, `batchyard workspaces` and `batchyard audit` (admin tokens)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from batchyard.client.cli.failures import EXIT_OK
from batchyard.client.cli.options import (
    add_amount_options,
    add_connection_options,
    add_output_option,
    command_group,
    duration_seconds,
    open_client,
)
from batchyard.client.cli.render import (
    as_datetime,
    data_text,
    message_dict,
    relative_time,
    table,
)
from batchyard.client.cli.retention import add_retention_commands
from batchyard.client.core.requests import ROLES
from batchyard.v1 import access_pb2

DEFAULT_LIMIT = 50

TOKENS_EPILOG = """\
A token belongs to one workspace and has one role: admin (tokens, workspaces, the audit
trail, and everything a member does), member (definitions and runs), viewer (read only)
or worker (only what a worker process does). Its secret is printed once, at creation;
the server keeps only a hash. Clients read it from --token, $BATCHYARD_TOKEN or
~/.config/batchyard/token.

examples:
  batchyard tokens create ci --role member --ttl 30d
  batchyard tokens create gpu-workers --role worker > worker-token
  batchyard tokens list
  batchyard tokens revoke byt_3f9a1c2b77d0
"""

WORKSPACES_EPILOG = """\
Workspaces keep tenants apart: definitions, runs, logs, results and tokens belong to
one. Admins of the `default` workspace create them; creating one prints the secret of
its first admin token, once.

examples:
  batchyard workspaces create analytics
  batchyard workspaces list
"""

AUDIT_EPILOG = """\
Who did what to which object in your workspace: definitions created, updated and
deleted, runs submitted, cancelled and deleted, tokens created and revoked, failed
sign-ins with a known token. Newest first.

examples:
  batchyard audit list
  batchyard audit list --action run.cancel -o json
"""


def register(subparsers: Any) -> None:
    """Add `tokens`, `workspaces` and `audit` to the `batchyard` parser."""
    _register_tokens(subparsers)
    _register_workspaces(subparsers)
    _register_audit(subparsers)


def _register_tokens(subparsers: Any) -> None:
    tokens = command_group(
        subparsers,
        "tokens",
        help_text="create, list and revoke API tokens (admin)",
        description="Manage the API tokens of your workspace (admin tokens only).",
        epilog=TOKENS_EPILOG,
    )
    create = tokens("create", "create a token and print its secret once", TOKENS_EPILOG)
    create.add_argument("name", metavar="NAME", help="a label, e.g. ci or laptop")
    create.add_argument(
        "--role", choices=sorted(ROLES), default="member", help="what it may do (default member)"
    )
    create.add_argument(
        "--ttl", type=duration_seconds, help="lifetime, e.g. 12h, 30d (default: no expiry)"
    )
    _common(create, output=None)
    create.set_defaults(handler=create_token)
    listed = tokens("list", "list the workspace's tokens (never their secrets)", TOKENS_EPILOG)
    listed.add_argument("--inactive", action="store_true", help="also revoked and expired tokens")
    add_amount_options(listed, "tokens", DEFAULT_LIMIT)
    _common(listed)
    listed.set_defaults(handler=list_tokens)
    revoke = tokens("revoke", "revoke a token: it stops working at once", TOKENS_EPILOG)
    revoke.add_argument("ref", metavar="TOKEN", help="the token's uuid or prefix (byt_…)")
    _common(revoke, output=None)
    revoke.set_defaults(handler=revoke_token)


def _register_workspaces(subparsers: Any) -> None:
    workspaces = command_group(
        subparsers,
        "workspaces",
        help_text="create and list workspaces (admin)",
        description="Create and list workspaces.",
        epilog=WORKSPACES_EPILOG,
    )
    create_ws = workspaces(
        "create", "create a workspace and its first admin token", WORKSPACES_EPILOG
    )
    create_ws.add_argument("name", metavar="NAME", help="lowercase letters, digits and -")
    create_ws.add_argument(
        "--admin-token-name", default="", help="label of its first token (default admin)"
    )
    _common(create_ws, output=None)
    create_ws.set_defaults(handler=create_workspace)
    list_ws = workspaces("list", "list the workspaces you may see", WORKSPACES_EPILOG)
    add_amount_options(list_ws, "workspaces", DEFAULT_LIMIT)
    _common(list_ws)
    list_ws.set_defaults(handler=list_workspaces)
    add_retention_commands(workspaces)


def _register_audit(subparsers: Any) -> None:
    audit = command_group(
        subparsers,
        "audit",
        help_text="read your workspace's audit trail (admin)",
        description="Read the audit trail of your workspace.",
        epilog=AUDIT_EPILOG,
    )
    list_audit = audit("list", "list audit events, newest first", AUDIT_EPILOG)
    list_audit.add_argument("--action", default="", help="only this action, e.g. run.cancel")
    add_amount_options(list_audit, "events", DEFAULT_LIMIT)
    _common(list_audit)
    list_audit.set_defaults(handler=list_audit_events)


def _common(parser: argparse.ArgumentParser, output: str | None = "table") -> None:
    add_connection_options(parser)
    add_output_option(parser, default=output)


def _role(token: access_pb2.Token) -> str:
    return access_pb2.TokenRole.Name(token.role).removeprefix("TOKEN_ROLE_").lower()


def _state(token: access_pb2.Token, now: datetime) -> str:
    if token.HasField("revoke_time"):
        return "revoked"
    expires = as_datetime(token.expire_time)
    if expires is not None:
        return "expired" if expires <= now else f"expires {expires:%Y-%m-%d %H:%M} UTC"
    return "active"


def create_token(args: argparse.Namespace) -> int:
    """`tokens create NAME [--role R] [--ttl D]`: the secret alone on stdout."""
    with open_client(args) as client:
        made = client.tokens.create(args.name, args.role, ttl=args.ttl)
    if args.output is None:
        print(made.secret)
        print(
            f"created {_role(made.token)} token {made.token.name} ({made.token.prefix}) in "
            f"workspace {made.token.workspace}; the secret above is shown only now",
            file=sys.stderr,
        )
    else:
        value = {"token": message_dict(made.token), "secret": made.secret}
        print(data_text(value, args.output))
    return EXIT_OK


def list_tokens(args: argparse.Namespace) -> int:
    """`tokens list [--inactive]`."""
    limit = None if args.all else args.limit
    with open_client(args) as client:
        found = list(
            client.tokens.list(show_inactive=args.inactive, limit=limit, page_size=args.page_size)
        )
    now = datetime.now(UTC)
    if args.output == "table":
        rows = [
            [
                t.prefix,
                t.name,
                _role(t),
                relative_time(as_datetime(t.create_time), now),
                t.created_by or "-",
                _state(t, now),
            ]
            for t in found
        ]
        headers = ["PREFIX", "NAME", "ROLE", "CREATED", "BY", "STATE"]
        print(
            table(headers, rows) if rows else "no tokens", file=sys.stdout if rows else sys.stderr
        )
    else:
        print(data_text([message_dict(t) for t in found], args.output))
    return EXIT_OK


def revoke_token(args: argparse.Namespace) -> int:
    """`tokens revoke TOKEN`."""
    with open_client(args) as client:
        revoked = client.tokens.revoke(args.ref)
    if args.output is None:
        print(f"revoked token {revoked.name} ({revoked.prefix})")
    else:
        print(data_text(message_dict(revoked), args.output))
    return EXIT_OK


def create_workspace(args: argparse.Namespace) -> int:
    """`workspaces create NAME`: the first admin token's secret alone on stdout."""
    with open_client(args) as client:
        made = client.workspaces.create(args.name, args.admin_token_name)
    if args.output is None:
        print(made.admin_secret)
        print(
            f"created workspace {made.workspace.name}; the admin token above "
            f"({made.admin_token.prefix}) is shown only now",
            file=sys.stderr,
        )
    else:
        value = {
            "workspace": message_dict(made.workspace),
            "adminToken": message_dict(made.admin_token),
            "adminSecret": made.admin_secret,
        }
        print(data_text(value, args.output))
    return EXIT_OK


def list_workspaces(args: argparse.Namespace) -> int:
    """`workspaces list`."""
    limit = None if args.all else args.limit
    with open_client(args) as client:
        found = list(client.workspaces.list(limit=limit, page_size=args.page_size))
    now = datetime.now(UTC)
    if args.output == "table":
        rows = [[w.name, relative_time(as_datetime(w.create_time), now)] for w in found]
        print(table(["NAME", "CREATED"], rows))
    else:
        print(data_text([message_dict(w) for w in found], args.output))
    return EXIT_OK


def list_audit_events(args: argparse.Namespace) -> int:
    """`audit list [--action A]`."""
    limit = None if args.all else args.limit
    with open_client(args) as client:
        found = list(client.audit.list(action=args.action, limit=limit, page_size=args.page_size))
    now = datetime.now(UTC)
    if args.output == "table":
        rows = [
            [
                relative_time(as_datetime(e.time), now),
                e.actor,
                e.action,
                f"{e.object_kind} {e.object_id}",
                e.detail,
            ]
            for e in found
        ]
        if rows:
            print(table(["WHEN", "WHO", "ACTION", "OBJECT", "DETAIL"], rows))
        else:
            print("no audit events", file=sys.stderr)
    else:
        print(data_text([message_dict(e) for e in found], args.output))
    return EXIT_OK
