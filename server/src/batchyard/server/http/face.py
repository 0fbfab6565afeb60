"""The HTTP face, assembled: the Connect routes of the served servicers, sign-in, the
console and /metrics, on hypercorn; it starts and stops with the gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor

from batchyard.server.api.auth import Authenticator
from batchyard.server.http.asgi import HttpApp
from batchyard.server.http.connect import ConnectHandler, routes_of
from batchyard.server.http.serve import HttpServer
from batchyard.server.http.session import Sessions, call_metadata
from batchyard.server.metrics.server_metrics import ServerMetrics
from batchyard.server.settings import ServerSettings
from batchyard.server.tls import check_listen

ENVELOPE_BYTES = 5


@dataclass(frozen=True)
class HttpParts:
    settings: ServerSettings
    served: list[tuple[object, ServiceDescriptor]]
    """The instrumented servicers and their services (as the gRPC port serves them)."""
    authenticator: Authenticator
    metrics: ServerMetrics


@dataclass
class HttpFace:
    server: HttpServer
    sessions: Sessions
    connect: ConnectHandler

    @property
    def port(self) -> int:
        return self.server.port

    def sign_in_link(self, token: str, host: str = "127.0.0.1") -> str:
        """A link that signs a browser in once (within minutes) as `token`."""
        code = self.sessions.one_time_code(token)
        return f"http://{host}:{self.port}/signin?code={code}"

    async def stop(self) -> None:
        await self.server.stop()


async def start_http_face(parts: HttpParts) -> HttpFace:
    settings = parts.settings
    check_listen(settings.http_listen, settings.tls, settings.insecure)
    connect = ConnectHandler(routes_of(parts.served), call_metadata)
    sessions = Sessions(parts.authenticator)
    parts.metrics.gauge(
        "batchyard_http_open_streams",
        "Server streams open on the HTTP port",
        lambda: connect.open_streams,
    )
    max_body = settings.limits.max_receive_message_bytes + ENVELOPE_BYTES
    app = HttpApp(connect, sessions, parts.metrics.render, max_body)
    server = HttpServer(
        app,
        settings.http_listen,
        settings.grace_seconds,
        settings.tls,
        any_port=settings.http_listen_any_port,
    )
    await server.start()
    return HttpFace(server, sessions, connect)
