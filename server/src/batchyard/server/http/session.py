"""Browser sign-in: a token kept in an HttpOnly, SameSite=Strict cookie, one-time sign-in
links (what `batchyard dev` prints), and the CSRF rule for calls the cookie authenticates.

A call's credentials are its `authorization` header when it has one. Otherwise the
session cookie stands for the token, but only on a GET (side-effect-free methods only)
or on a POST carrying the header ``x-batchyard-csrf: 1``, which a cross-site form cannot
send, and never when an `origin` header names another host.
"""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import urlsplit

from batchyard.server.api.auth import Authenticator
from batchyard.server.domain.access import Permission, Principal
from batchyard.server.domain.errors import DomainError
from batchyard.server.http.context import HttpContext, Metadata
from batchyard.server.http.request import Request, Responder

COOKIE = "batchyard_session"
CSRF_HEADER = "x-batchyard-csrf"
CODE_SECONDS = 600.0
SESSION_SECONDS = 12 * 3600
_DROPPED = frozenset({"cookie", "host", "content-length", "connection"})


def _same_origin(request: Request) -> bool:
    origin = request.header("origin")
    return not origin or urlsplit(origin).netloc == request.header("host")


def cookie_allowed(request: Request) -> bool:
    """May the session cookie stand for the token of this request?"""
    if not _same_origin(request):
        return False
    return request.method == "GET" or request.header(CSRF_HEADER) == "1"


def call_metadata(request: Request) -> Metadata:
    """The gRPC-style metadata of a call: its headers, and the cookie's token as
    `authorization` when the call has none and the cookie is allowed."""
    pairs = [(k, v) for k, v in request.headers.items() if k not in _DROPPED]
    token = request.cookies.get(COOKIE)
    if token and not request.header("authorization") and cookie_allowed(request):
        pairs.append(("authorization", f"Bearer {token}"))
    return tuple(pairs)


def _cookie(value: str, max_age: int) -> tuple[str, str]:
    return (
        "set-cookie",
        f"{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}",
    )


class Sessions:
    """Sign-in and sign-out, and the one-time codes of sign-in links."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator
        self._codes: dict[str, tuple[str, float]] = {}

    def one_time_code(self, token: str) -> str:
        """A code that signs in once, within CODE_SECONDS, as `token`."""
        now = time.monotonic()
        self._codes = {c: v for c, v in self._codes.items() if v[1] > now}
        code = secrets.token_urlsafe(24)
        self._codes[code] = (token, now + CODE_SECONDS)
        return code

    async def principal(self, token: str) -> Principal | None:
        context = HttpContext((("authorization", f"Bearer {token}"),), None)
        try:
            return await self._authenticator.guard(context, Permission.READ, "/console/SignIn")  # type: ignore[arg-type]  # the part of a context it reads
        except DomainError:
            return None

    async def handle(self, request: Request, respond: Responder) -> None:
        if request.path == "/signin":
            await self._redeem(request, respond)
        elif request.method == "GET":
            await self._whoami(request.cookies.get(COOKIE, ""), respond, [])
        elif not (cookie_allowed(request) and request.header(CSRF_HEADER) == "1"):
            await _json(respond, 403, {"message": f"send the header {CSRF_HEADER}: 1"})
        elif request.method == "DELETE":
            await _json(respond, 200, {}, [_cookie("", 0)])
        elif request.method == "POST":
            try:
                token = str(json.loads(request.body or b"{}").get("token", ""))
            except (ValueError, AttributeError):
                token = ""
            await self._whoami(token, respond, [_cookie(token, SESSION_SECONDS)])
        else:
            await respond.whole(405, "text/plain", b"method not allowed\n")

    async def _whoami(self, token: str, respond: Responder, headers: list[tuple[str, str]]) -> None:
        principal = await self.principal(token) if token else None
        if principal is None:
            await _json(respond, 401, {"message": "not signed in, or the token is not valid"})
            return
        body = {
            "role": principal.role.value,
            "workspace": principal.workspace,
            "tokenName": principal.token_name,
        }
        await _json(respond, 200, body, headers)

    async def _redeem(self, request: Request, respond: Responder) -> None:
        found = self._codes.pop(request.query.get("code", ""), None)
        if found is None or found[1] <= time.monotonic():
            message = b"This sign-in link was used already or has expired: sign in with a token.\n"
            await respond.whole(400, "text/plain; charset=utf-8", message)
            return
        headers = [_cookie(found[0], SESSION_SECONDS), ("location", "/")]
        await respond.whole(303, "text/plain", b"signed in\n", headers)


async def _json(
    respond: Responder, status: int, body: object, headers: list[tuple[str, str]] | None = None
) -> None:
    await respond.whole(status, "application/json", json.dumps(body).encode(), headers)
