"""The worker's composition root: reaper, channel, runner, signals — started and stopped here."""

from __future__ import annotations

import asyncio
import signal

import structlog

from batchyard.client.connection import dial, split_target
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
    reaper = Reaper.start()
    try:
        address = split_target(settings.server)[0]
        async with dial(address, settings.tls, channel_options()) as channel:
            api = WorkerApi(
                channel,
                worker_id=settings.worker_id,
                queues=settings.queues,
                lease_wait=settings.lease_wait,
                token=settings.token,
            )
            runner = Runner(settings, api, reaper)
            _install_signal_handlers(runner)
            try:
                await runner.run()
            finally:
                _remove_signal_handlers()
    finally:
        reaper.close()


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
