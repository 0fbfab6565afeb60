"""`batchyard dev`: everything on one machine with no set-up.

An embedded PostgreSQL, the server, and one worker process (started as
`python -m batchyard.worker`, so the server never imports the worker), all logging to
the terminal; Ctrl-C stops the worker first (its running jobs are released), then the
server, then PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from batchyard.config import Flag, add_flags, integer, path, resolve, switch, text
from batchyard.server import settings as server_settings
from batchyard.server.app import App, first_of
from batchyard.server.bootstrap import dev_token, dev_token_file
from batchyard.server.demo import run_demo
from batchyard.server.dev_banner import print_banner
from batchyard.server.embedded import DATABASE
from batchyard.server.log_config import configure_logging
from batchyard.server.sandbox import SANDBOX, ensure_sandbox

log = structlog.get_logger(__name__)

SERVER_ONLY_ENV = frozenset(
    {
        "BATCHYARD_SECRET_KEYS",
        "BATCHYARD_SECRET_KEY_FILE",
        "BATCHYARD_DATABASE_URL",
        "DATABASE_URL",
        # The worker dials the dev server on loopback, in plaintext.
        "BATCHYARD_TLS",
        "BATCHYARD_TLS_CA",
        "BATCHYARD_TLS_CERT",
        "BATCHYARD_TLS_KEY",
        "BATCHYARD_TLS_CLIENT_CA",
        "BATCHYARD_INSECURE",
    }
)

EXAMPLES = """\
examples:
  batchyard dev                                  # serve 127.0.0.1:50051, jobs from ./
  batchyard dev --demo                           # ... and run a `hello` job once
  batchyard dev --workspace-root ~/jobs --slots 8
then, in another terminal:
  batchyard definitions create -f job.yaml && batchyard runs submit NAME --wait
"""


SLOTS = Flag("slots", integer(1), "runs the worker executes at once", default=4)
WORKSPACE_ROOT = Flag(
    "workspace-root",
    path(metavar="DIR"),
    "folder WORKSPACE sources are relative to",
    default=Path(),
    default_text="here",
)
QUEUES = Flag(
    "queues", text(metavar="QUEUES"), "queues the worker serves, comma-separated", default="default"
)
DEMO = Flag(
    "demo",
    switch(),
    "once everything is up, define a `hello` job (if missing) and run it",
    default=False,
    presence=True,
    flag_only=True,
)
FLAGS = (SLOTS, WORKSPACE_ROOT, QUEUES, DEMO)
"""The flags `batchyard dev` adds to the server's: its worker's."""


@dataclass(frozen=True)
class DevWorker:
    slots: int
    workspace_root: Path
    queues: str
    demo: bool


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "dev",
        help="run PostgreSQL, the server and a worker on this machine",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server_settings.add_arguments(parser)
    add_flags(parser, FLAGS)
    parser.set_defaults(handler=run_dev)


def run_dev(args: argparse.Namespace) -> int:
    try:
        settings = server_settings.from_args(args)
        values = resolve(FLAGS, args, os.environ)
    except ValueError as exc:
        print(f"batchyard dev: {exc}", file=sys.stderr)
        return 2
    worker = DevWorker(values[SLOTS], values[WORKSPACE_ROOT], values[QUEUES], values[DEMO])
    if settings.tls is not None:
        print(
            "batchyard dev: serves plaintext to its own worker; TLS is for `batchyard server`",
            file=sys.stderr,
        )
        return 2
    if importlib.util.find_spec("batchyard.worker") is None:
        print(
            "batchyard dev: the worker is not installed (pip install batchyard-worker)",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if settings.log_level != "debug":  # a line per RPC is for `batchyard server`
        logging.getLogger("batchyard.server.rpc").setLevel(logging.WARNING)
    http_listen, any_port = dev_http_listen(args)
    settings = replace(settings, http_listen=http_listen, http_listen_any_port=any_port)
    try:
        asyncio.run(_dev(settings, worker))
    except OSError as exc:  # a busy --listen address, a data directory it cannot use
        print(f"batchyard dev: {exc}", file=sys.stderr)
        return 1
    return 0


async def _dev(settings: server_settings.ServerSettings, dev: DevWorker) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = App(settings, warn_without_tokens=False)  # dev makes its own token
    await app.start()
    worker: asyncio.subprocess.Process | None = None
    try:
        token = await dev_token(app.dsn)
        log.info("dev_token_ready", file=str(dev_token_file()))
        link = console_link(app, token)
        if link:
            log.info("console_ready", sign_in=link)
        sql_targets = {}
        if app.embedded is not None:  # a database of its own for SQL jobs
            sandbox = await ensure_sandbox(app.embedded.admin_dsn, DATABASE)
            sql_targets[f"BATCHYARD_SQL_TARGET_{SANDBOX.upper()}"] = sandbox
            log.info("sql_target_ready", name=SANDBOX)
        worker = await _start_worker(app.port, dev, settings, token, sql_targets)
        console = [f"console: {link}"] if link else []
        print_banner(app.port, dev_token_file(), demo=dev.demo, extra=console)
        if dev.demo:
            demo = asyncio.create_task(run_demo(app.port, token))
            demo.add_done_callback(_report_demo)
        waiter = asyncio.create_task(worker.wait())
        stopper = asyncio.create_task(first_of(stop, app.failed))
        done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if waiter in done:
            log.error("worker_exited", code=worker.returncode)
        elif app.failed.is_set():
            log.error("server_ending", failed_service=app.failure)
    finally:
        if worker is not None and worker.returncode is None:
            await _stop_worker(worker, settings.grace_seconds)
        await app.stop()


def dev_http_listen(args: argparse.Namespace) -> tuple[str, bool]:
    """`batchyard dev` serves the HTTP face (the console) unless told `--http-listen off`:
    on DEV_HTTP_LISTEN, or on a free port when another program holds that one (True)."""
    raw = resolve([server_settings.HTTP_LISTEN], args, os.environ)[server_settings.HTTP_LISTEN]
    if raw:
        return ("" if raw == "off" else str(raw)), False
    return server_settings.DEV_HTTP_LISTEN, True


def console_link(app: App, token: str) -> str:
    """The one-time sign-in link of the console (empty without the HTTP face)."""
    return app.http.sign_in_link(token) if app.http is not None else ""


def _report_demo(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("demo_failed", error=repr(task.exception()))


async def _start_worker(
    port: int,
    dev: DevWorker,
    settings: server_settings.ServerSettings,
    token: str,
    sql_targets: dict[str, str],
) -> asyncio.subprocess.Process:
    cmd = [
        sys.executable,
        "-m",
        "batchyard.worker",
        "--server",
        f"127.0.0.1:{port}",
        "--slots",
        str(dev.slots),
        "--queues",
        dev.queues,
        "--workspace-root",
        str(dev.workspace_root.resolve()),
        # Ctrl-C stops now: running jobs get SIGTERM at once and are handed back
        # (ReleaseRun), to run again at the next start; `batchyard worker` waits its grace.
        "--grace",
        "0",
    ]
    env = {
        # Never the server's secret keys or database URL: jobs inherit the worker's env.
        **{k: v for k, v in os.environ.items() if k not in SERVER_ONLY_ENV},
        "BATCHYARD_LOG_FORMAT": settings.log_format,
        "BATCHYARD_LOG_LEVEL": settings.log_level,
        **settings.artifacts.as_env(),  # results go where the server reads them
        "BATCHYARD_TOKEN": token,  # in the environment, not argv (visible to ps)
        **sql_targets,
    }
    # Its own process group: Ctrl-C reaches us, and we stop the worker in order.
    worker = await asyncio.create_subprocess_exec(*cmd, env=env, start_new_session=True)
    log.info("worker_started", pid=worker.pid, slots=dev.slots)
    return worker


async def _stop_worker(worker: asyncio.subprocess.Process, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        worker.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(worker.wait(), grace + 15)
    except TimeoutError:
        log.warning("worker_killed", pid=worker.pid)
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()
