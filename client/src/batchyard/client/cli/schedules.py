"""`batchyard schedules`: definitions run on a timetable (cron in a time zone, or an
interval). The SDK is imported inside the handlers (a fast start for other commands)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from batchyard.client.cli.failures import EXIT_OK
from batchyard.client.cli.options import (
    add_connection_options,
    add_output_option,
    command_group,
    duration_seconds,
    env_pair,
    open_client,
)

OVERLAP_CHOICES = ("skip", "buffer-one", "allow", "cancel-other")

GROUP_EPILOG = """\
A schedule submits a run of its definition at each fire time: a cron expression (5
fields, or @hourly, @daily, @weekly, @monthly, @yearly) read in an IANA time zone, or a
fixed interval. Each fire time makes at most one run, however many servers run.
DST: a time the clocks skip fires at the first minute after the gap; a time that repeats
fires once, at its first occurrence.

examples:
  batchyard schedules create nightly-report --cron '30 2 * * *' --tz Europe/Oslo
  batchyard schedules create poll --every 5m --overlap skip
  batchyard schedules list
  batchyard schedules trigger SCHEDULE_ID
"""

CREATE_EPILOG = """\
examples:
  batchyard schedules create nightly-report --cron '30 2 * * *' --tz Europe/Oslo
  batchyard schedules create poll --every 30s --overlap allow --max-concurrent 3
  batchyard schedules create sync --cron @hourly --catchup 1h --arg --full --note 'CRM'

--overlap says what a fire does while earlier runs of the schedule are unfinished: skip
(the default: no run), buffer-one (run once they end), allow (up to --max-concurrent),
cancel-other (cancel them, then run). After downtime, missed fire times at most --catchup
old (default 10m) are fired, each once, oldest first.
"""

UPDATE_EPILOG = """\
Only the options given change; the timetable restarts from now.

examples:
  batchyard schedules update 6b1f0c9e-2a43-4d1e-9a55-0c1d2e3f4a5b --cron '0 3 * * *'
  batchyard schedules update 6b1f0c9e-2a43-4d1e-9a55-0c1d2e3f4a5b --overlap allow --note busy
"""

ID_EPILOG = """\
examples:
  batchyard schedules {name} 6b1f0c9e-2a43-4d1e-9a55-0c1d2e3f4a5b
"""


def _timing_options(parser: argparse.ArgumentParser, required: bool) -> None:
    when = parser.add_mutually_exclusive_group(required=required)
    when.add_argument("--cron", help="a cron expression: 5 fields or @hourly-style")
    when.add_argument("--every", type=duration_seconds, help="a fixed interval, e.g. 30s, 5m")
    parser.add_argument("--tz", help="IANA time zone of the cron expression (default UTC)")
    parser.add_argument("--overlap", choices=OVERLAP_CHOICES, help="overlap policy")
    parser.add_argument("--max-concurrent", type=int, help="with --overlap allow (default 10)")
    parser.add_argument("--catchup", type=duration_seconds, help="catch-up window (10m)")
    parser.add_argument("--start", type=datetime.fromisoformat, help="no fire before (ISO)")
    parser.add_argument("--end", type=datetime.fromisoformat, help="no fire after (ISO)")
    parser.add_argument("--note", help="a note for people")
    parser.add_argument("--arg", action="append", dest="args", help="replaces the args")
    parser.add_argument("--env", action="append", type=env_pair, help="KEY=VALUE, merged")


def register(subparsers: Any) -> None:
    """Add `schedules` and its commands to the `batchyard` parser."""
    command = command_group(
        subparsers,
        "schedules",
        help_text="run definitions on a timetable (cron or interval)",
        description="Run definitions on a timetable.",
        epilog=GROUP_EPILOG,
    )
    create = command("create", "create a schedule of a definition", CREATE_EPILOG)
    create.add_argument("definition", metavar="DEF", help="the definition's name or uuid")
    _timing_options(create, required=True)
    _common(create, "table")
    create.set_defaults(handler=create_schedule)
    listed = command("list", "list schedules with their next fire", GROUP_EPILOG)
    listed.add_argument("--definition", default="", help="only the schedules of this one")
    _common(listed, "table")
    listed.set_defaults(handler=list_schedules)
    update = command("update", "change a schedule", UPDATE_EPILOG)
    update.add_argument("schedule", metavar="ID", help="the schedule's uuid")
    update.add_argument("--definition", dest="new_definition", help="another definition")
    _timing_options(update, required=False)
    _common(update, "table")
    update.set_defaults(handler=update_schedule)
    for name, handler, text in (
        ("get", get_schedule, "show a schedule, its next fire times and latest fires"),
        ("pause", pause_schedule, "pause a schedule (runs already submitted go on)"),
        ("resume", resume_schedule, "resume a paused schedule"),
        ("trigger", trigger_schedule, "submit a run of a schedule now"),
        ("delete", delete_schedule, "delete a schedule (its runs stay)"),
    ):
        sub = command(name, text, ID_EPILOG.format(name=name))
        sub.add_argument("schedule", metavar="ID", help="the schedule's uuid")
        _common(sub, "table" if name in ("get", "pause", "resume") else None)
        sub.set_defaults(handler=handler)


def _common(parser: argparse.ArgumentParser, output: str | None) -> None:
    add_connection_options(parser)
    add_output_option(parser, default=output)


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The SDK keywords of the options given."""
    import os

    env = None
    if args.env:
        env = {k: (v if v is not None else os.environ.get(k, "")) for k, v in args.env}
    given = {
        "cron": args.cron,
        "interval": args.every,
        "time_zone": args.tz,
        "overlap": args.overlap,
        "max_concurrent_runs": args.max_concurrent,
        "catchup_window": args.catchup,
        "start_time": _aware(args.start),
        "end_time": _aware(args.end),
        "note": args.note,
        "args": args.args,
        "env": env,
    }
    return {k: v for k, v in given.items() if v is not None}


def _aware(when: datetime | None) -> datetime | None:
    return when.astimezone() if when is not None and when.tzinfo is None else when


def create_schedule(args: argparse.Namespace) -> int:
    """`schedules create DEF --cron EXPR | --every D ...`."""
    with open_client(args) as client:
        made = client.schedules.create(args.definition, **_changes(args))
    _show(made, args.output)
    return EXIT_OK


def update_schedule(args: argparse.Namespace) -> int:
    """`schedules update ID [options]`: only the options given change."""
    changes = _changes(args)
    if args.new_definition:
        changes["definition"] = args.new_definition
    with open_client(args) as client:
        _show(client.schedules.update(args.schedule, **changes), args.output)
    return EXIT_OK


def list_schedules(args: argparse.Namespace) -> int:
    """`schedules list`: one line each, with the next fire."""
    from batchyard.client.cli.render import data_text, message_dict, table

    with open_client(args) as client:
        found = list(client.schedules.list(definition=args.definition))
    if args.output != "table":
        print(data_text([message_dict(s) for s in found], args.output))
        return EXIT_OK
    rows = [[s.uuid, s.definition, _timing(s), _overlap(s), _next(s), _state(s)] for s in found]
    print(table(["ID", "DEFINITION", "WHEN", "OVERLAP", "NEXT FIRE", "STATE"], rows))
    return EXIT_OK


def get_schedule(args: argparse.Namespace) -> int:
    """`schedules get ID`."""
    with open_client(args) as client:
        _show(client.schedules.get(args.schedule), args.output)
    return EXIT_OK


def pause_schedule(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        _show(client.schedules.pause(args.schedule), args.output)
    return EXIT_OK


def resume_schedule(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        _show(client.schedules.resume(args.schedule), args.output)
    return EXIT_OK


def trigger_schedule(args: argparse.Namespace) -> int:
    """`schedules trigger ID`: the new run's uuid alone on stdout."""
    from batchyard.client.cli.render import data_text, message_dict

    with open_client(args) as client:
        run = client.schedules.trigger(args.schedule)
    print(run.uuid if args.output is None else data_text(message_dict(run), args.output))
    return EXIT_OK


def delete_schedule(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        client.schedules.delete(args.schedule)
    print(f"deleted schedule {args.schedule}")
    return EXIT_OK


def _timing(s: Any) -> str:
    if s.WhichOneof("timing") == "cron":
        return f"{s.cron} ({s.time_zone or 'UTC'})"
    return f"every {s.interval.ToTimedelta()}"


def _overlap(s: Any) -> str:
    from batchyard.v1 import schedule_pb2

    name: str = schedule_pb2.OverlapPolicy.Name(s.overlap_policy)
    return name.removeprefix("OVERLAP_POLICY_").lower().replace("_", "-")


def _next(s: Any) -> str:
    if not s.next_fire_times:
        return "-"
    return str(s.next_fire_times[0].ToDatetime().isoformat(timespec="seconds")) + "Z"


def _state(s: Any) -> str:
    if s.paused:
        return "paused"
    if s.last_error:
        return "failing"
    return "active" if s.next_fire_times else "ended"


def _show(s: Any, output: str | None) -> None:
    from batchyard.client.cli.render import data_text, key_values, message_dict, table
    from batchyard.v1 import run_pb2, schedule_pb2

    if output not in (None, "table"):
        print(data_text(message_dict(s), output))
        return
    pairs = [
        ("ID", s.uuid),
        ("Definition", s.definition),
        ("When", _timing(s)),
        ("Overlap", _overlap(s)),
        ("State", _state(s)),
        ("Next fires", ", ".join(t.ToDatetime().isoformat() + "Z" for t in s.next_fire_times)),
    ]
    if s.note:
        pairs.append(("Note", s.note))
    if s.last_error:
        pairs.append(("Last error", s.last_error))
    print(key_values(pairs))
    if s.recent_fires:
        rows = [
            [
                f.fire_time.ToDatetime().isoformat() + "Z",
                schedule_pb2.FireOutcome.Name(f.outcome).removeprefix("FIRE_OUTCOME_").lower(),
                f.run or "-",
                run_pb2.RunStatus.Name(f.run_status).removeprefix("RUN_STATUS_").lower()
                if f.run_status
                else "-",
                ("manual " if f.manual else "") + f.message,
            ]
            for f in s.recent_fires
        ]
        print()
        print(table(["FIRE TIME", "OUTCOME", "RUN", "RUN STATUS", "NOTE"], rows))
