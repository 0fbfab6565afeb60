"""A worker process over mutual TLS: with its certificate it leases and runs a job end to
end; without one the server never lets it in."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from batchyard.client.connection import ClientTls, aio_channel
from batchyard.server.app import App
from batchyard.server.tls import ServerTls
from batchyard.v1 import run_pb2
from batchyard.worker.settings import (
    SettingsError,
    WorkerSettings,
    add_arguments,
    settings_from_args,
)
from tests.e2e.jobs import define, submit, wait_for
from tests.tls import Pki, make_pki

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def server(server_factory, pki: Pki) -> App:
    """This module's server requires client certificates signed by the test CA."""
    return await server_factory(tls=ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca))


@pytest.fixture
async def channel(target: str, admin_token: str, pki: Pki) -> AsyncIterator[grpc.aio.Channel]:
    tls = ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    async with aio_channel(target, token=admin_token, tls=tls) as ch:
        yield ch


def worker_tls(pki: Pki) -> list[str]:
    return [
        "--tls-ca", str(pki.ca),
        "--tls-cert", str(pki.client_cert),
        "--tls-key", str(pki.client_key),
    ]  # fmt: skip


async def test_a_worker_with_its_certificate_runs_a_job(definitions, runs, start_worker, pki):
    await define(
        definitions,
        "hello",
        {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh", "args": ["-c", "echo hello"]},
    )
    run = await submit(runs, "hello")
    start_worker(*worker_tls(pki))
    done = await wait_for(runs, run.uuid, timeout=60)
    assert done.status == run_pb2.RUN_STATUS_SUCCEEDED


async def test_a_worker_without_a_certificate_is_kept_out(
    definitions, runs, start_worker, pki, tmp_path
):
    await define(
        definitions,
        "hello",
        {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh", "args": ["-c", "echo hello"]},
    )
    run = await submit(runs, "hello")
    start_worker("--tls-ca", str(pki.ca))  # TLS, but no client certificate
    log = tmp_path / "worker-0.log"
    for _ in range(300):
        if log.exists() and "lease_request_failed" in log.read_text():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the worker never failed to lease: {log.read_text()}")
    assert "UNAVAILABLE" in log.read_text()
    still = await wait_for(runs, run.uuid, done=lambda r: True)
    assert still.status == run_pb2.RUN_STATUS_PENDING


# ---------------------------------------------------------------- the worker's flags


def parse(argv: list[str], env: dict[str, str] | None = None) -> WorkerSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return settings_from_args(parser.parse_args(argv), {"PATH": "/usr/bin:/bin", **(env or {})})


def test_worker_tls_flags_and_environment(pki: Pki) -> None:
    assert parse([]).tls is None
    assert parse(["--tls"]).tls == ClientTls()
    assert parse(["--server", "grpcs://batch.example"]).tls == ClientTls()
    assert parse(["--server", "grpc://batch.example:1"]).tls is None
    full = parse(worker_tls(pki))
    assert full.tls == ClientTls(pki.ca, pki.client_cert, pki.client_key)
    from_env = parse([], {"BATCHYARD_TLS_CA": str(pki.ca)})
    assert from_env.tls == ClientTls(ca=pki.ca)
    assert parse([], {"BATCHYARD_TLS_CA": str(pki.ca), "BATCHYARD_TLS": "0"}).tls is None


def test_worker_tls_mistakes_are_reported(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--server: unknown scheme"):
        parse(["--server", "ftp://batch.example"])
    with pytest.raises(SettingsError, match=r"--tls-ca: .* is not a file"):
        parse(["--tls-ca", str(tmp_path / "missing.pem")])
    with pytest.raises(SettingsError, match="go together"):
        parse(["--tls-cert", str(pki.client_cert)])
    with pytest.raises(SettingsError, match="not a PEM file"):
        parse(["--tls-ca", str(pki.client_key)])
