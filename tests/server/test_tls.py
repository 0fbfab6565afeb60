"""TLS and mutual TLS: who can connect to a TLS server, with which certificates, and the
refusal to serve plaintext beyond loopback unless told to."""

from __future__ import annotations

import argparse
import asyncio

import grpc
import pytest

from batchyard.client.cli.main import build_parser, main
from batchyard.client.connection import ClientTls, TlsConfigError, aio_channel, split_target
from batchyard.server import settings as server_settings
from batchyard.server.tls import ServerTls, TlsError, is_loopback
from batchyard.v1 import definition_service_pb2 as pb
from batchyard.v1 import definition_service_pb2_grpc
from tests.server.helpers import server_command
from tests.tls import Pki, make_pki

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tls_target(server_factory, pki) -> str:
    app = await server_factory(tls=ServerTls(pki.server_cert, pki.server_key))
    return f"127.0.0.1:{app.port}"


@pytest.fixture
async def mtls_target(server_factory, pki) -> str:
    app = await server_factory(tls=ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca))
    return f"127.0.0.1:{app.port}"


async def get_missing(target: str, tls: bool | ClientTls | None) -> grpc.StatusCode:
    """What GetDefinition of a missing definition answers (NOT_FOUND: the call went
    through, credentials and all)."""
    async with aio_channel(target, tls=tls) as channel:
        stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
        try:
            await stub.GetDefinition(pb.GetDefinitionRequest(definition="missing"), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    raise AssertionError("a missing definition was found")


async def test_a_tls_client_that_trusts_the_ca_is_served(tls_target, pki):
    assert await get_missing(tls_target, ClientTls(ca=pki.ca)) == grpc.StatusCode.NOT_FOUND
    localhost = tls_target.replace("127.0.0.1", "localhost")
    assert await get_missing(localhost, ClientTls(ca=pki.ca)) == grpc.StatusCode.NOT_FOUND


async def test_a_plaintext_client_cannot_talk_to_a_tls_server(tls_target):
    assert await get_missing(tls_target, False) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_trusting_another_ca_refuses_the_server(tls_target, pki):
    assert await get_missing(tls_target, ClientTls(ca=pki.other_ca)) == grpc.StatusCode.UNAVAILABLE


async def test_a_grpcs_target_or_the_environment_turns_tls_on(tls_target, pki, monkeypatch):
    monkeypatch.setenv("BATCHYARD_TLS_CA", str(pki.ca))
    assert await get_missing(f"grpcs://{tls_target}", None) == grpc.StatusCode.NOT_FOUND
    assert await get_missing(f"https://{tls_target}/", None) == grpc.StatusCode.NOT_FOUND
    assert await get_missing(tls_target, None) == grpc.StatusCode.NOT_FOUND  # the CA alone
    assert await get_missing(f"grpc://{tls_target}", None) == grpc.StatusCode.UNAVAILABLE
    monkeypatch.setenv("BATCHYARD_TLS", "0")
    assert await get_missing(tls_target, None) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_refuses_a_client_without_a_certificate(mtls_target, pki):
    assert await get_missing(mtls_target, ClientTls(ca=pki.ca)) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_refuses_a_certificate_of_another_ca(mtls_target, pki):
    stranger = ClientTls(ca=pki.ca, cert=pki.stranger_cert, key=pki.stranger_key)
    assert await get_missing(mtls_target, stranger) == grpc.StatusCode.UNAVAILABLE


async def test_mtls_serves_a_client_with_a_valid_certificate(mtls_target, pki):
    client = ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    assert await get_missing(mtls_target, client) == grpc.StatusCode.NOT_FOUND


async def test_mtls_still_needs_a_token(mtls_target, pki, monkeypatch):
    monkeypatch.delenv("BATCHYARD_TOKEN")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")  # no token file either
    client = ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    assert await get_missing(mtls_target, client) == grpc.StatusCode.UNAUTHENTICATED


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_the_cli_speaks_tls_with_its_flags(mtls_target, pki, capsys):
    files = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert)]
    files += ["--tls-key", str(pki.client_key)]
    assert await cli("definitions", "list", "--server", mtls_target, *files) == 0
    capsys.readouterr()
    code = await cli("definitions", "list", "--server", mtls_target, "--timeout", "5")
    err = capsys.readouterr().err
    assert code == 3
    assert "cannot reach the Batchyard server" in err
    assert "--tls" in err  # the hint


async def test_the_cli_reports_a_missing_tls_file_as_a_usage_error(tls_target, tmp_path, capsys):
    missing = tmp_path / "nope.pem"
    assert await cli("definitions", "list", "--server", tls_target, "--tls-ca", str(missing)) == 2
    assert f"cannot read the TLS CA {missing}" in capsys.readouterr().err


def test_targets_with_a_scheme():
    assert split_target("batch.example:50051") == ("batch.example:50051", None)
    assert split_target("grpcs://batch.example") == ("batch.example:443", True)
    assert split_target("https://batch.example:8443/") == ("batch.example:8443", True)
    assert split_target("grpc://[::1]:50051") == ("[::1]:50051", False)
    assert split_target("http://[::1]") == ("[::1]:80", False)
    with pytest.raises(TlsConfigError, match="unknown scheme"):
        split_target("ftp://batch.example")


def test_a_client_certificate_needs_its_key(pki):
    with pytest.raises(TlsConfigError, match="go together"):
        ClientTls(ca=pki.ca, cert=pki.client_cert).credentials()


# ---------------------------------------------------------------- the server's flags


def parse(*argv: str) -> server_settings.ServerSettings:
    parser = argparse.ArgumentParser()
    server_settings.add_arguments(parser)
    return server_settings.from_args(parser.parse_args(list(argv)))


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.0.0.2:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("unix:/tmp/batchyard.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.1.2.3:50051", False),
        ("batch.example:50051", False),
    ],
)
def test_loopback_addresses(listen, loopback):
    assert is_loopback(listen) is loopback


def test_plaintext_beyond_loopback_needs_insecure(monkeypatch, pki):
    for name in ("BATCHYARD_TLS_CERT", "BATCHYARD_TLS_KEY", "BATCHYARD_INSECURE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TlsError, match="--insecure"):
        parse("--listen", "0.0.0.0:50051")
    assert parse("--listen", "0.0.0.0:50051", "--insecure").tls is None
    served = parse(
        "--listen",
        "0.0.0.0:50051",
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
    )
    assert served.tls == ServerTls(pki.server_cert, pki.server_key)
    monkeypatch.setenv("BATCHYARD_INSECURE", "1")
    assert parse("--listen", "0.0.0.0:50051").insecure


def test_tls_flags_are_checked(pki, tmp_path):
    with pytest.raises(TlsError, match="--tls-cert and --tls-key go together"):
        parse("--tls-cert", str(pki.server_cert))
    with pytest.raises(TlsError, match="--tls-client-ca needs TLS"):
        parse("--tls-client-ca", str(pki.ca))
    with pytest.raises(TlsError, match="--tls-key: cannot read"):
        parse("--tls-cert", str(pki.server_cert), "--tls-key", str(tmp_path / "missing.key"))
    with pytest.raises(TlsError, match=r"--tls-key: .* holds no PEM private key"):
        parse("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_cert))
    mutual = parse(
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--tls-client-ca",
        str(pki.ca),
    )
    assert mutual.tls is not None and mutual.tls.client_ca == pki.ca


def test_commands_that_do_not_serve_need_neither_loopback_nor_the_files(tmp_path, monkeypatch):
    """`server migrate` and `server bootstrap` share the deployment's flags and variables
    but listen on nothing and read no certificate."""
    monkeypatch.delenv("BATCHYARD_INSECURE", raising=False)
    gone = ["--tls-cert", str(tmp_path / "gone.pem"), "--tls-key", str(tmp_path / "gone.key")]
    for action in ("migrate", "bootstrap"):
        args = build_parser().parse_args(["server", action, "--listen", "0.0.0.0:50051", *gone])
        assert server_settings.from_args(args).tls == ServerTls(
            tmp_path / "gone.pem", tmp_path / "gone.key"
        )
    args = build_parser().parse_args(["server", "--listen", "0.0.0.0:50051", *gone])
    with pytest.raises(TlsError, match="--tls-cert: cannot read"):
        server_settings.from_args(args)


def test_the_server_command_refuses_plaintext_on_every_interface(tmp_path):
    """Nothing is bound: the flags are refused before the server starts."""
    done = server_command(tmp_path, "--listen", "0.0.0.0:50051")
    assert done.returncode == 2
    assert "refusing to serve plaintext on 0.0.0.0:50051" in done.stderr
    assert "--insecure" in done.stderr
