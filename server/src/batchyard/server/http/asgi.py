"""The ASGI application of the HTTP port: Connect calls, sign-in, /metrics, the console."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from batchyard.server.http.connect import ConnectHandler
from batchyard.server.http.request import Receive, Responder, Scope, Send, TooLarge, read_request
from batchyard.server.http.session import Sessions
from batchyard.server.http.static_files import serve_static

Metrics = Callable[[], Awaitable[tuple[bytes, str]]]


class HttpApp:
    def __init__(
        self,
        connect: ConnectHandler,
        sessions: Sessions,
        metrics: Metrics | None,
        max_body_bytes: int,
    ) -> None:
        self.connect = connect
        self.sessions = sessions
        self._metrics = metrics
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        respond = Responder(send, receive)
        try:
            request = await read_request(scope, receive, self._max_body)
        except TooLarge:
            error = {"code": "resource_exhausted", "message": "the request body is too large"}
            await respond.whole(413, "application/json", json.dumps(error).encode())
            return
        path = request.path
        first = path.split("/", 2)[1] if path.count("/") >= 2 else ""
        if "." in first:  # /package.Service/Method
            await self.connect(request, respond)
        elif path == "/metrics" and self._metrics is not None:
            body, content_type = await self._metrics()
            await respond.whole(200, content_type, body)
        elif path in ("/signin", "/api/session"):
            await self.sessions.handle(request, respond)
        else:
            await serve_static(request, respond)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
