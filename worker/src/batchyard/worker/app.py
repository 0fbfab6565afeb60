"""The worker's composition root: reaper, channel, runner, signals — started and stopped here."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace

import structlog

from batchyard.client.connection import dial, split_target
from batchyard.worker.execution import cgroups
from batchyard.worker.execution.directories import SlotDirectories
from batchyard.worker.execution.options import ExecutionOptions
from batchyard.worker.leasing.runner import Runner
from batchyard.worker.reaper.client import Reaper
from batchyard.worker.server_api import WorkerApi, channel_options
from batchyard.worker.settings import WorkerSettings

_log = structlog.get_logger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(settings: WorkerSettings) -> None:
    """Runs the worker until SIGTERM/SIGINT (a second signal skips the grace period).

    Raises :class:`~batchyard.worker.leasing.runner.WorkerCrashed` if a background loop died.
    """
    structlog.contextvars.bind_contextvars(worker_id=settings.worker_id)
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tree, described = cgroups.choose(settings.execution.process_tree, settings.state_dir)
    _log.info(
        "process_tree",
        mode=cgroups.CGROUP if tree is not None else cgroups.PROCESS_GROUP,
        detail=described,
    )
    settings = replace(settings, execution=replace(settings.execution, cgroups=tree))
    reaper = Reaper.start()
    if tree is not None:
        reaper.track_cgroup_root(tree.root)
    try:
        connection = settings.connection
        address = split_target(connection.server)[0]
        async with dial(address, connection.tls, channel_options()) as channel:
            api = WorkerApi(
                channel,
                worker_id=settings.worker_id,
                queues=settings.runner.queues,
                lease_wait=connection.lease_wait,
                token=connection.token,
                slots=settings.runner.slots,
            )
            runner = Runner(
                settings.runner,
                api,
                reaper,
                execution=execution_options(settings),
                shipping=settings.shipping,
            )
            _install_signal_handlers(runner)
            try:
                await runner.run()
            finally:
                _remove_signal_handlers()
    finally:
        reaper.close()
        if tree is not None:
            tree.close()


def execution_options(settings: WorkerSettings) -> ExecutionOptions:
    """Every attempt's options: the settings', with the slots' directories (and job users)
    and the one artifact store of this worker."""
    return replace(
        settings.execution,
        directories=SlotDirectories(settings.state_dir, settings.job_users),
        artifacts=settings.artifact_store(),
    )


def _install_signal_handlers(runner: Runner) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        _log.info("signal_received", signal=sig.name)
        if runner.stopping:
            runner.hurry()
        else:
            runner.shutdown()

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)


def _remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.remove_signal_handler(sig)
