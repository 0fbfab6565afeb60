"""`batchyard workspaces set-retention` / `get-retention` and the filters of
`batchyard runs delete` (bulk deletion). The SDK is imported inside the handlers."""

from __future__ import annotations

import argparse
from typing import Any

from batchyard.client.cli.failures import EXIT_OK, UsageError
from batchyard.client.cli.options import (
    CommandFactory,
    add_connection_options,
    add_output_option,
    duration_seconds,
    non_negative_int,
    open_client,
)

RETENTION_EPILOG = """\
A finished run is deleted once either rule says so: it ended longer ago than --keep-for,
or it is not among the latest --keep-succeeded SUCCEEDED (or --keep-failed FAILED and
CANCELLED) runs of its definition. With --definition the rules given override the
workspace's for that definition. Unfinished runs are never deleted.

examples:
  batchyard workspaces set-retention --keep-for 30d --keep-succeeded 10 --keep-failed 10
  batchyard workspaces set-retention --definition nightly-report --keep-succeeded 100
  batchyard workspaces set-retention --audit-keep-for 365d
  batchyard workspaces get-retention --definition nightly-report
"""

BULK_EPILOG = """
bulk deletion of finished runs (never pending or running ones):
  batchyard runs delete --older-than 30d --status succeeded --dry-run
  batchyard runs delete --definition nightly-report --status failed,cancelled
  batchyard runs delete --schedule SCHEDULE_ID --older-than 7d
"""


def add_retention_commands(workspaces: CommandFactory) -> None:
    """Add `set-retention` and `get-retention` to `batchyard workspaces`."""
    setter = workspaces("set-retention", "set how long finished runs are kept", RETENTION_EPILOG)
    setter.add_argument("--definition", default="", help="an override for this definition")
    setter.add_argument("--keep-for", type=duration_seconds, help="keep runs this long, e.g. 30d")
    setter.add_argument("--keep-succeeded", type=non_negative_int, help="latest K succeeded")
    setter.add_argument("--keep-failed", type=non_negative_int, help="latest K failed/cancelled")
    setter.add_argument("--audit-keep-for", type=duration_seconds, help="audit events (e.g. 1y)")
    add_connection_options(setter)
    add_output_option(setter)
    setter.set_defaults(handler=set_retention)
    getter = workspaces("get-retention", "show the retention policy", RETENTION_EPILOG)
    getter.add_argument("--definition", default="", help="with this definition's override")
    add_connection_options(getter)
    add_output_option(getter)
    getter.set_defaults(handler=get_retention)


def _policy_rows(label: str, p: Any) -> list[list[str]]:
    def period(d: Any, present: bool) -> str:
        return str(d.ToTimedelta()) if present else "-"

    return [
        [
            label,
            period(p.keep_for, p.HasField("keep_for")),
            str(p.keep_succeeded) if p.HasField("keep_succeeded") else "all",
            str(p.keep_failed) if p.HasField("keep_failed") else "all",
            period(p.audit_keep_for, p.HasField("audit_keep_for")),
        ]
    ]


def _print_policies(pairs: list[tuple[str, Any]], output: str) -> None:
    from batchyard.client.cli.render import data_text, message_dict, table

    if output != "table":
        print(data_text({k: message_dict(p) for k, p in pairs}, output))
        return
    rows = [row for label, p in pairs for row in _policy_rows(label, p)]
    print(table(["POLICY", "KEEP FOR", "SUCCEEDED", "FAILED", "AUDIT"], rows))


def set_retention(args: argparse.Namespace) -> int:
    """`workspaces set-retention ...`: replaces the policy whole."""
    with open_client(args) as client:
        policy = client.retention.set_policy(
            definition=args.definition,
            keep_for=args.keep_for,
            keep_succeeded=args.keep_succeeded,
            keep_failed=args.keep_failed,
            audit_keep_for=args.audit_keep_for,
        )
    _print_policies([(args.definition or "workspace", policy)], args.output)
    return EXIT_OK


def get_retention(args: argparse.Namespace) -> int:
    """`workspaces get-retention [--definition D]`."""
    with open_client(args) as client:
        got = client.retention.get_policy(args.definition)
    pairs = [("workspace", got.workspace_policy)]
    if args.definition:
        pairs += [(args.definition, got.definition_policy), ("effective", got.effective_policy)]
    _print_policies(pairs, args.output)
    return EXIT_OK


def add_delete_filters(parser: argparse.ArgumentParser) -> None:
    """The bulk filters of `runs delete`."""
    from batchyard.client.cli.runs import status_list

    bulk = parser.add_argument_group("bulk deletion (instead of ID)")
    bulk.add_argument("--older-than", type=duration_seconds, help="ended longer ago, e.g. 30d")
    bulk.add_argument("--status", type=status_list, help="finished statuses, e.g. succeeded")
    bulk.add_argument("--definition", default="", help="runs of this definition")
    bulk.add_argument("--schedule", default="", help="runs of this schedule (uuid)")
    bulk.add_argument("--dry-run", action="store_true", help="only count what would go")


def is_bulk(args: argparse.Namespace) -> bool:
    return bool(args.older_than or args.status or args.definition or args.schedule)


def delete_runs(args: argparse.Namespace) -> int:
    """`runs delete --older-than D --status S ... [--dry-run]`."""
    if args.run:
        raise UsageError("give a run ID or bulk filters, not both")
    if not is_bulk(args):
        raise UsageError(
            "give a run ID, or at least one of --older-than, --status, --definition, --schedule"
        )
    with open_client(args) as client:
        count = client.retention.delete_runs(
            status=args.status,
            definition=args.definition,
            schedule=args.schedule,
            older_than=args.older_than,
            dry_run=args.dry_run,
        )
    print(f"{count} runs {'would be deleted' if args.dry_run else 'deleted'}")
    return EXIT_OK
