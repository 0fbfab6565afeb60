"""Where the server listens, and how: TLS (optionally requiring client certificates) or
plaintext, which only a loopback address gets without saying `--insecure`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from batchyard.config import Flag, Values, path, switch

INSECURE_HINT = (
    "give --tls-cert FILE and --tls-key FILE to serve TLS, or --insecure to serve "
    "plaintext anyway (e.g. behind a TLS-terminating proxy or a service mesh)"
)


class TlsError(ValueError):
    """The TLS configuration is wrong or its files unreadable; the message says which."""


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate chain and key (PEM files), and the CA that client
    certificates must chain to; with a client CA every caller needs a valid certificate
    (mutual TLS), in addition to its bearer token."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """The files read now (a replaced certificate needs a restart)."""
        chain = _read_pem(self.cert, "--tls-cert", b"CERTIFICATE")
        key = _read_pem(self.key, "--tls-key", b"PRIVATE KEY")
        client_ca = (
            _read_pem(self.client_ca, "--tls-client-ca", b"CERTIFICATE")
            if self.client_ca is not None
            else None
        )
        return grpc.ssl_server_credentials(
            [(key, chain)],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )


def _read_pem(path: Path, flag: str, kind: bytes) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data or kind not in data:
        raise TlsError(f"{flag}: {path} holds no PEM {kind.decode().lower()}")
    return data


def is_loopback(listen: str) -> bool:
    """Whether HOST:PORT (or [V6]:PORT, or unix:PATH) is reachable only from this machine."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, or empty (every interface)
        return False


def check_listen(listen: str, tls: ServerTls | None, insecure: bool) -> None:
    """Refuse plaintext on an address other machines can reach, unless `insecure`."""
    if tls is None and not insecure and not is_loopback(listen):
        raise TlsError(f"refusing to serve plaintext on {listen}: {INSECURE_HINT}")


class ListenError(OSError):
    """The address cannot be listened on (in use, or not this machine's)."""


def add_port(server: grpc.aio.Server, listen: str, tls: ServerTls | None, insecure: bool) -> int:
    """Bind `listen` with TLS or plaintext; the bound port (ListenError if it fails)."""
    check_listen(listen, tls, insecure)
    if tls is None:
        try:
            port = server.add_insecure_port(listen)
        except RuntimeError:  # grpc's "Failed to bind to address …"
            port = 0
    else:
        try:
            port = server.add_secure_port(listen, tls.credentials())
        except RuntimeError as exc:  # grpc could not use the certificate or key
            raise TlsError(f"cannot serve TLS on {listen}: {exc}") from None
    if port == 0:
        raise ListenError(
            f"cannot listen on {listen}: the address is in use (another batchyard dev or "
            "server?) or not this machine's; choose another with --listen HOST:PORT"
        )
    return port


TLS_CERT = Flag(
    "tls-cert",
    path(metavar="FILE"),
    "serve TLS with this PEM certificate chain (with --tls-key)",
)
TLS_KEY = Flag("tls-key", path(metavar="FILE"), "the certificate's PEM private key")
TLS_CLIENT_CA = Flag(
    "tls-client-ca",
    path(metavar="FILE"),
    "require every client (workers included) to present a certificate signed by this PEM "
    "CA: mutual TLS, on top of bearer tokens",
)
INSECURE = Flag(
    "insecure",
    switch(),
    "allow plaintext on an address other than loopback; without TLS, only 127.0.0.1, ::1 "
    "and localhost are served by default",
    default=False,
    presence=True,
)
FLAGS = (TLS_CERT, TLS_KEY, TLS_CLIENT_CA, INSECURE)
"""The "TLS" group of `batchyard server`."""


def from_values(values: Values, listen: str, *, serving: bool = True) -> ServerTls | None:
    """The TLS the flags ask for. When `serving`, its files are read now and plaintext
    beyond loopback is refused (TlsError names the flag); the other commands sharing the
    flags (`server migrate`, `server bootstrap`) neither need the files nor listen."""
    # No default: None when not given.
    cert: Path | None = values[TLS_CERT]
    key: Path | None = values[TLS_KEY]
    client_ca: Path | None = values[TLS_CLIENT_CA]
    if (cert is None) != (key is None):
        raise TlsError("--tls-cert and --tls-key go together: give both or neither")
    if cert is None and client_ca is not None:
        raise TlsError("--tls-client-ca needs TLS: give --tls-cert and --tls-key too")
    tls = None
    if cert is not None and key is not None:
        ca = client_ca.resolve() if client_ca is not None else None
        tls = ServerTls(cert=cert.resolve(), key=key.resolve(), client_ca=ca)
    if serving:
        check_listen(listen, tls, values[INSECURE])
        if tls is not None:
            tls.credentials()  # fail now, with the flag's name, if a file is missing or wrong
    return tls
