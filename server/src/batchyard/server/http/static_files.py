"""The console's files (plain ES modules and CSS, committed), served with a strict
Content-Security-Policy: no inline script, nothing from anywhere else."""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath

from batchyard.server.http.request import Request, Responder

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _file(path: str) -> tuple[bytes, str] | None:
    relative = PurePosixPath(path.lstrip("/") or "index.html")
    if ".." in relative.parts or relative.suffix not in _TYPES:
        return None
    node = resources.files("batchyard.server.http").joinpath("static", *relative.parts)
    if not node.is_file():
        return None
    return node.read_bytes(), _TYPES[relative.suffix]


async def serve_static(request: Request, respond: Responder) -> None:
    if request.method not in ("GET", "HEAD"):
        await respond.whole(405, "text/plain", b"method not allowed\n")
        return
    path = request.path.removeprefix("/static") if request.path.startswith("/static/") else ""
    found = _file(path or "index.html")
    if found is None:
        await respond.whole(404, "text/plain", b"not found\n")
        return
    body, content_type = found
    headers = [("content-security-policy", CSP), ("x-frame-options", "DENY")]
    await respond.whole(200, content_type, body, headers)
