"""An HTTP request as the handlers read it, and the ASGI sending side as they answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

SECURITY_HEADERS = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
]


class TooLarge(Exception):
    """The request body is over the limit."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes = b""
    cookies: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


def _cookies(raw: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in raw.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name not in found:
            found[name] = value
    return found


async def read_request(scope: Scope, receive: Receive, max_bytes: int) -> Request:
    """The request with its whole body (TooLarge past `max_bytes`)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    chunks, size, more = [], 0, scope["method"] in ("POST", "PUT", "DELETE", "PATCH")
    while more:
        event = await receive()
        if event["type"] == "http.disconnect":
            break
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge()
        chunks.append(chunk)
        more = event.get("more_body", False)
    return Request(
        scope["method"],
        scope["path"],
        headers,
        query,
        b"".join(chunks),
        _cookies(headers.get("cookie", "")),
    )


class Responder:
    """Answers one request: whole, or started then in chunks."""

    def __init__(self, send: Send, receive: Receive) -> None:
        self._send = send
        self._receive = receive
        self.gone = False
        self.status = 0

    async def whole(
        self,
        status: int,
        content_type: str,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        await self.start(status, content_type, headers)
        await self.chunk(body, more=False)

    async def start(
        self, status: int, content_type: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.status = status
        pairs = [("content-type", content_type), *SECURITY_HEADERS, *(headers or [])]
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in pairs],
            }
        )

    async def chunk(self, data: bytes, more: bool = True) -> None:
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": more})
        except (OSError, RuntimeError):  # the client went away under us
            self.gone = True
            raise

    async def disconnected(self) -> None:
        """Returns when the client goes away."""
        while True:
            event = await self._receive()
            if event["type"] == "http.disconnect":
                self.gone = True
                return
