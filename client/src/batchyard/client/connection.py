"""Channels to a Batchyard server: where it is, and a deadline on every call."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

SERVER_ENV = "BATCHYARD_SERVER"
TOKEN_ENV = "BATCHYARD_TOKEN"  # noqa: S105 (a variable name)
DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT = 30.0
# After losing the server, the channel tries to connect again after 0.2 s, then backs
# off up to 5 s (gRPC's own default grows to 2 min, which would keep a follower that
# resumes after a server restart failing long after the server is back).
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


def resolve_target(target: str | None = None) -> str:
    """The server address: `target` if given, else $BATCHYARD_SERVER, else localhost:50051."""
    return target or os.environ.get(SERVER_ENV) or DEFAULT_TARGET


def _config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "batchyard"


def token_file() -> Path:
    """Where a user keeps their token: ``$XDG_CONFIG_HOME/batchyard/token`` (one line)."""
    return _config_dir() / "token"


def dev_token_file() -> Path:
    """Where `batchyard dev` leaves its local admin token (user-only file)."""
    return _config_dir() / "dev-token"


def _is_loopback(target: str) -> bool:
    host = target.rsplit(":", 1)[0].strip("[]") if ":" in target else target
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def _read_token(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text or None


def resolve_token(token: str | None = None, target: str | None = None) -> str | None:
    """The API token: `token` if given, else $BATCHYARD_TOKEN, else the token file; for a
    server on this machine, last of all the token `batchyard dev` wrote."""
    found = token or os.environ.get(TOKEN_ENV) or _read_token(token_file())
    if found is None and _is_loopback(resolve_target(target)):
        found = _read_token(dev_token_file())
    return found


def channel(
    target: str | None = None,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    token: str | None = None,
) -> grpc.Channel:
    """A plaintext channel to the server at `resolve_target(target)`, sending the token
    `resolve_token(token, target)` as ``authorization: Bearer …`` on every call.

    Every unary-response call made on it without a timeout of its own gets `timeout`
    seconds (None: no default deadline). Streaming-response calls (watching a run,
    following logs) run as long as the caller lets them: pass their timeout explicitly.
    After losing the server, it tries to connect again within 0.2 s to 5 s.
    Close the channel when done (it is a context manager).
    """
    plain = grpc.insecure_channel(resolve_target(target), options=CHANNEL_OPTIONS)
    interceptors: list[Any] = []
    secret = resolve_token(token, target)
    if secret:
        interceptors.append(BearerToken(secret))
    if timeout is not None:
        interceptors.append(DefaultDeadline(timeout))
    return grpc.intercept_channel(plain, *interceptors) if interceptors else plain


def aio_channel(target: str | None = None, *, token: str | None = None) -> grpc.aio.Channel:
    """The asyncio counterpart of :func:`channel` (no default deadline: pass timeouts)."""
    secret = resolve_token(token, target)
    interceptors = [AioBearerToken.make(kind, secret) for kind in _AIO_KINDS] if secret else []
    return grpc.aio.insecure_channel(
        resolve_target(target), options=CHANNEL_OPTIONS, interceptors=interceptors
    )


def _with_token(details: Any, metadata: tuple[tuple[str, str], ...]) -> _CallDetails:
    return _CallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=(*(details.metadata or ()), *metadata),
        credentials=details.credentials,
        wait_for_ready=getattr(details, "wait_for_ready", None),
        compression=getattr(details, "compression", None),
    )


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """A client interceptor adding ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        """Continue the call with the token."""
        return continuation(_with_token(client_call_details, self._metadata), request)

    def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        """Continue the call with the token."""
        return continuation(_with_token(client_call_details, self._metadata), request)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Continue the call with the token."""
        return continuation(_with_token(client_call_details, self._metadata), request_iterator)

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Continue the call with the token."""
        return continuation(_with_token(client_call_details, self._metadata), request_iterator)


class AioBearerToken:
    """grpc.aio interceptors adding the token (grpc.aio wants one class per call kind)."""

    @staticmethod
    def make(kind: type[Any], token: str) -> grpc.aio.ClientInterceptor:
        metadata = (("authorization", f"Bearer {token}"),)
        method = {
            grpc.aio.UnaryUnaryClientInterceptor: "intercept_unary_unary",
            grpc.aio.UnaryStreamClientInterceptor: "intercept_unary_stream",
            grpc.aio.StreamUnaryClientInterceptor: "intercept_stream_unary",
            grpc.aio.StreamStreamClientInterceptor: "intercept_stream_stream",
        }[kind]

        async def intercept(self: Any, continuation: Any, details: Any, request: Any) -> Any:
            aio_details = grpc.aio.ClientCallDetails(
                details.method,
                details.timeout,
                grpc.aio.Metadata(*(details.metadata or ()), *metadata),
                details.credentials,
                details.wait_for_ready,
            )
            return await continuation(aio_details, request)

        interceptor: grpc.aio.ClientInterceptor = type(
            f"AioBearerToken{kind.__name__}", (kind,), {method: intercept}
        )()
        return interceptor


_AIO_KINDS = (
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class DefaultDeadline(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    """A client interceptor giving unary-response calls a deadline when they have none."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        if details.timeout is not None:
            return details
        return _CallDetails(
            method=details.method,
            timeout=self.timeout,
            metadata=details.metadata,
            credentials=details.credentials,
            wait_for_ready=getattr(details, "wait_for_ready", None),
            compression=getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Continue the call with the default deadline if it has none."""
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        """Continue the call with the default deadline if it has none."""
        return continuation(self._details(client_call_details), request_iterator)
