"""Serving the HTTP app on hypercorn (HTTP/1.1 and HTTP/2, h2c included), on a socket of
our own so port 0 works and the port is known before start() returns."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket

import structlog
from hypercorn.asyncio import serve
from hypercorn.config import Config

from batchyard.server.http.asgi import HttpApp
from batchyard.server.tls import ServerTls

log = structlog.get_logger(__name__)


def split_host_port(listen: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--http-listen: {listen!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104  # "" means every interface


class HttpServer:
    def __init__(
        self,
        app: HttpApp,
        listen: str,
        grace_seconds: float,
        tls: ServerTls | None = None,
        any_port: bool = False,
    ) -> None:
        self.app = app
        self._any_port = any_port
        self._tls = tls
        self._listen = listen
        self._grace = grace_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    async def start(self) -> None:
        host, port = split_host_port(self._listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self._socket = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if not (self._any_port and exc.errno == errno.EADDRINUSE):
                sock.close()
                raise
            log.warning("http_port_taken", port=port, hint="serving on a free port instead")
            sock.bind((host, 0))
        sock.listen(1024)
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        config = Config()
        owned = os.dup(sock.fileno())  # hypercorn takes it over (and closes it)
        os.set_inheritable(owned, True)
        config.bind = [f"fd://{owned}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("batchyard.server.http")
        config.graceful_timeout = self._grace
        config.keep_alive_timeout = 75
        if self._tls is not None:  # the gRPC port's certificate (client certificates: gRPC only)
            config.certfile, config.keyfile = str(self._tls.cert), str(self._tls.key)
        self._task = asyncio.create_task(
            serve(self.app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]
        )
        await asyncio.sleep(0)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self._grace + 1)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
        if self._socket is not None:
            self._socket.close()
