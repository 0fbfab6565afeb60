"""`ClientBase`: what `Client` and `AsyncClient` share — their arguments, where the
server is, the deadline and the call helper; each face connects its own way."""

from __future__ import annotations

from typing import Generic, TypeAlias, TypeVar

from batchyard.client import connection
from batchyard.client.core.retry import NO_RETRY, RetryPolicy

Call = TypeVar("Call")
Tls: TypeAlias = "bool | connection.ClientTls | None"


class ClientBase(Generic[Call]):
    """A connection to a Batchyard server (see `Client` and `AsyncClient`).

    `server` is HOST:PORT (grpcs://HOST for TLS; default $BATCHYARD_SERVER, else
    localhost:50051); `token` the API token (default $BATCHYARD_TOKEN, else
    ~/.config/batchyard/token, else on this machine the one `batchyard dev` wrote);
    `tls` True, False, a `ClientTls` with a private CA or client certificate, or None
    to let the server address and $BATCHYARD_TLS decide. `timeout` is the deadline of
    each call in seconds. `retry` says how calls that are safe to repeat are retried
    when the server cannot be reached (None: never).
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        token: str | None = None,
        tls: bool | connection.ClientTls | None = None,
        timeout: float = connection.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 (frozen, shared safely)
    ) -> None:
        self.server = connection.resolve_target(server)
        """The server's address."""
        self.timeout = timeout
        """The deadline of each call, in seconds."""
        self.retry: Call = self._caller(retry or NO_RETRY, timeout)
        """The call helper (its `retries` counts the retries made)."""
        self._connect(server, token, tls, retry or NO_RETRY)

    @staticmethod
    def _caller(policy: RetryPolicy, timeout: float) -> Call:
        raise NotImplementedError

    def _connect(
        self, server: str | None, token: str | None, tls: Tls, policy: RetryPolicy
    ) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(server={self.server!r})"
