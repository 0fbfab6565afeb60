"""``batchyard worker`` (through the ``batchyard.commands`` entry point) and
``python -m batchyard.worker``: the same flags, the same handler."""

from __future__ import annotations

import argparse
import asyncio
import sys

import structlog

from batchyard.worker.app import serve
from batchyard.worker.execution.cgroups import CgroupError
from batchyard.worker.execution.job_users import JobUsersError, check_access
from batchyard.worker.leasing.runner import WorkerCrashed
from batchyard.worker.process_log import configure_process_logging
from batchyard.worker.settings import SettingsError, add_arguments, settings_from_args

DESCRIPTION = (
    "Lease runs from a Batchyard server and execute them, each attempt as a subprocess in "
    "its own process group. Flags also read BATCHYARD_* environment variables."
)

EXAMPLES = """\
examples:
  BATCHYARD_TOKEN=byt_... batchyard worker --server batchyard.internal:50051 --slots 8
  batchyard worker --queues default,gpu --workspace-root /srv/jobs --artifacts s3://bucket/runs
  BATCHYARD_SQL_TARGET_WAREHOUSE=postgresql://... batchyard worker   # SQL jobs' target
  batchyard worker --server grpcs://batchyard.internal:50051 --tls-ca ca.pem
  sudo batchyard worker --job-users 60000 --slots 8    # each slot's jobs as their own uid
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds the ``worker`` command to the ``batchyard`` command line."""
    parser = subparsers.add_parser(
        "worker",
        help="lease and execute runs",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(handler=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    """Runs the worker; the exit code: 0 after a clean shutdown, 1 if it crashed."""
    try:
        settings = settings_from_args(args)
        if settings.job_users is not None:
            check_access(
                settings.job_users,
                state_dir=settings.state_dir,
                interpreters=(sys.executable, settings.execution.python),
            )
    except SettingsError as exc:
        print(f"batchyard worker: {exc}", file=sys.stderr)
        return 2
    except JobUsersError as exc:
        print(f"batchyard worker: --job-users: {exc}", file=sys.stderr)
        return 2
    configure_process_logging(settings.log_format, settings.log_level.upper())
    log = structlog.get_logger(__name__)
    try:
        asyncio.run(serve(settings))
    except WorkerCrashed as exc:
        log.error("worker_crashed", reason=str(exc))
        return 1
    except CgroupError as exc:
        print(f"batchyard worker: --process-tree=cgroup: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchyard.worker", description=DESCRIPTION)
    add_arguments(parser)
    return run_worker(parser.parse_args(argv))
