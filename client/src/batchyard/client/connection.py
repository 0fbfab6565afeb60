"""Channels to a Batchyard server: where it is, TLS or plaintext, the token, and a deadline
on every call."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

SERVER_ENV = "BATCHYARD_SERVER"
TOKEN_ENV = "BATCHYARD_TOKEN"  # noqa: S105 (a variable name)
TLS_ENV = "BATCHYARD_TLS"
TLS_CA_ENV = "BATCHYARD_TLS_CA"
TLS_CERT_ENV = "BATCHYARD_TLS_CERT"
TLS_KEY_ENV = "BATCHYARD_TLS_KEY"
_SCHEMES = {"grpcs": True, "https": True, "grpc": False, "http": False}
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


class TlsConfigError(ValueError):
    """The TLS configuration is wrong (a file missing, unreadable, or not PEM)."""


@dataclass(frozen=True)
class ClientTls:
    """TLS to the server. `ca` (PEM) verifies the server's certificate; None trusts the
    system's roots. `cert` and `key` (PEM) are this client's certificate, for a server that
    requires one (mutual TLS)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """The files read now; TlsConfigError names the one that is wrong."""
        if (self.cert is None) != (self.key is None):
            raise TlsConfigError("a client certificate and its key go together: give both")
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca, "CA", b"CERTIFICATE"),
            private_key=_read_pem(self.key, "client key", b"PRIVATE KEY"),
            certificate_chain=_read_pem(self.cert, "client certificate", b"CERTIFICATE"),
        )


def _read_pem(path: Path | None, what: str, kind: bytes) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.expanduser().read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data or kind not in data:
        raise TlsConfigError(f"the TLS {what} {path} is not a PEM file")
    return data


def split_target(target: str) -> tuple[str, bool | None]:
    """The HOST:PORT to dial, and whether the target's scheme asks for TLS: grpcs:// and
    https:// do (port 443 if none), grpc:// and http:// do not; no scheme: None."""
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target, None
    tls = _SCHEMES.get(scheme.lower())
    if tls is None:
        raise TlsConfigError(
            f"unknown scheme in {target!r}: use grpcs:// or https:// for TLS, "
            "grpc:// or http:// (or none) for plaintext"
        )
    address = rest.rstrip("/")
    if not address.rpartition("]")[2].count(":"):
        address += ":443" if tls else ":80"
    return address, tls


def choose_tls(
    target: str,
    enabled: bool | None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> tuple[str, ClientTls | None]:
    """The address to dial and the TLS to use (None: plaintext). TLS is on when `enabled`
    is True, off when it is False; when it is None, the target's scheme decides, and
    without a scheme TLS is on if a CA, a certificate or a key is given."""
    address, by_scheme = split_target(target)
    if enabled is None:
        enabled = by_scheme
    if enabled is None:
        enabled = any(path is not None for path in (ca, cert, key))
    return address, ClientTls(ca, cert, key) if enabled else None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


def _env_switch(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    return value in ("1", "true", "yes", "on")


def resolve_tls(
    target: str | None = None, tls: bool | ClientTls | None = None
) -> tuple[str, ClientTls | None]:
    """The address to dial and the TLS to use for `resolve_target(target)`.

    A ClientTls is used as given. Otherwise TLS is on when `tls` is True, or else when the
    target is grpcs:// or https://, or else when $BATCHYARD_TLS is true, or else when
    $BATCHYARD_TLS_CA, _CERT or _KEY name a file; those variables give the files.
    `tls=False`, a grpc:// or http:// target, or BATCHYARD_TLS=0 mean plaintext.
    """
    resolved = resolve_target(target)
    if isinstance(tls, ClientTls):
        return split_target(resolved)[0], tls
    files = (_env_path(TLS_CA_ENV), _env_path(TLS_CERT_ENV), _env_path(TLS_KEY_ENV))
    enabled = tls
    if enabled is None and split_target(resolved)[1] is None:
        enabled = _env_switch(TLS_ENV)
    return choose_tls(resolved, enabled, *files)


def dial(
    address: str,
    tls: ClientTls | None,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """An asyncio channel to HOST:PORT, with TLS or plaintext (no token, no deadline)."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        address, tls.credentials(), options=options, interceptors=interceptors
    )


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
    target = target.partition("://")[2] or target
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
    tls: bool | ClientTls | None = None,
) -> grpc.Channel:
    """A channel to the server at `resolve_target(target)`, sending the token
    `resolve_token(token, target)` as ``authorization: Bearer …`` on every call.

    TLS or plaintext as :func:`resolve_tls` decides: ``tls=True`` or a ``grpcs://`` target
    turn it on; ``ClientTls(ca=..., cert=..., key=...)`` names a private CA and a client
    certificate. Raises TlsConfigError when a TLS file cannot be used.

    Every unary-response call made on it without a timeout of its own gets `timeout`
    seconds (None: no default deadline). Streaming-response calls (watching a run,
    following logs) run as long as the caller lets them: pass their timeout explicitly.
    After losing the server, it tries to connect again within 0.2 s to 5 s.
    Close the channel when done (it is a context manager).
    """
    address, chosen = resolve_tls(target, tls)
    plain = (
        grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        if chosen is None
        else grpc.secure_channel(address, chosen.credentials(), options=CHANNEL_OPTIONS)
    )
    interceptors: list[Any] = []
    secret = resolve_token(token, target)
    if secret:
        interceptors.append(BearerToken(secret))
    if timeout is not None:
        interceptors.append(DefaultDeadline(timeout))
    return grpc.intercept_channel(plain, *interceptors) if interceptors else plain


def aio_channel(
    target: str | None = None,
    *,
    token: str | None = None,
    tls: bool | ClientTls | None = None,
) -> grpc.aio.Channel:
    """The asyncio counterpart of :func:`channel` (no default deadline: pass timeouts)."""
    secret = resolve_token(token, target)
    interceptors = [AioBearerToken.make(kind, secret) for kind in _AIO_KINDS] if secret else []
    address, chosen = resolve_tls(target, tls)
    return dial(address, chosen, CHANNEL_OPTIONS, interceptors)


def call_details(details: Any, timeout: float | None, metadata: Any) -> grpc.ClientCallDetails:
    """The details of a synchronous call with another `timeout` and `metadata`."""
    return _CallDetails(
        method=details.method,
        timeout=timeout,
        metadata=metadata,
        credentials=details.credentials,
        wait_for_ready=getattr(details, "wait_for_ready", None),
        compression=getattr(details, "compression", None),
    )


def _with_token(details: Any, metadata: tuple[tuple[str, str], ...]) -> grpc.ClientCallDetails:
    return call_details(details, details.timeout, (*(details.metadata or ()), *metadata))


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """A client interceptor adding ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    def _unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Continue a unary-request call with the token."""
        return continuation(_with_token(client_call_details, self._metadata), request)

    def _streaming(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        """Continue a streaming-request call with the token."""
        return continuation(_with_token(client_call_details, self._metadata), request_iterator)

    intercept_unary_unary = intercept_unary_stream = _unary
    intercept_stream_unary = intercept_stream_stream = _streaming


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
        return call_details(details, self.timeout, details.metadata)

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
