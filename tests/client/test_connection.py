"""connection: where the server is, and the default deadline on every unary call."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import grpc
import pytest

from batchyard.client import connection
from batchyard.client.cli.main import main
from batchyard.v1 import definition_service_pb2 as pb
from batchyard.v1 import definition_service_pb2_grpc


@pytest.fixture
def silent_target() -> Iterator[str]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_target_from_argument_environment_or_default(monkeypatch):
    monkeypatch.delenv("BATCHYARD_SERVER", raising=False)
    assert connection.resolve_target() == "localhost:50051"
    monkeypatch.setenv("BATCHYARD_SERVER", "batch.example:443")
    assert connection.resolve_target() == "batch.example:443"
    assert connection.resolve_target("other:1") == "other:1"


@pytest.mark.timeout(20)
def test_calls_without_a_timeout_get_the_default_deadline(silent_target):
    with connection.channel(silent_target, timeout=0.3) as ch:
        stub = definition_service_pb2_grpc.DefinitionServiceStub(ch)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetDefinition(pb.GetDefinitionRequest(definition="x"))
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.timeout(20)
def test_cli_reports_a_server_that_does_not_answer(silent_target, capsys):
    code = main(["definitions", "get", "x", "--server", silent_target, "--timeout", "0.3"])
    assert code == 3
    err = capsys.readouterr().err
    assert f"the server at {silent_target} did not answer in time" in err
    assert "--timeout" in err


async def test_the_channel_reaches_a_real_server(target):
    with connection.channel(target) as ch:
        stub = definition_service_pb2_grpc.DefinitionServiceStub(ch)
        with pytest.raises(grpc.RpcError) as raised:
            await asyncio.to_thread(stub.GetDefinition, pb.GetDefinitionRequest(definition="nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.timeout(20)
def test_the_hint_names_the_deadline_option_of_runs_submit(silent_target, capsys):
    argv = ["runs", "submit", "x", "--server", silent_target, "--request-timeout", "0.3"]
    assert main(argv) == 3
    assert "Raise the deadline with --request-timeout." in capsys.readouterr().err
    assert main(["runs", "list", "--server", silent_target, "--request-timeout", "0.3"]) == 3
    assert "Raise the deadline with --timeout." in capsys.readouterr().err
