"""The server as users run it: a subprocess, found through health and reflection."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    job_pb2,
)
from tests.processes import bootstrap_token, free_port, start_server, stop, wait_serving


def events(log: Path) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


async def list_services(target: str) -> set[str]:
    async with aio_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request])):
            return {s.name for s in reply.list_services_response.service}
    return set()


async def test_health_reflection_and_graceful_sigterm(tmp_path, database_url):
    port = free_port()
    target = f"127.0.0.1:{port}"
    log = tmp_path / "server.log"
    proc = start_server("--listen", target, "--database-url", database_url, "--grace", "5", log=log)
    try:
        await wait_serving(target, proc)
        services = await list_services(target)
        assert "batchyard.v1.DefinitionService" in services
        assert "grpc.health.v1.Health" in services
        assert {
            "batchyard.v1.RunService",
            "batchyard.v1.WorkerService",
            "batchyard.v1.LogService",
        } <= services

        async with aio_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(
                health_pb2.HealthCheckRequest(service="batchyard.v1.DefinitionService")
            )
            first = await watch.read()
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            proc.terminate()
            second = await asyncio.wait_for(watch.read(), 10)
            assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    names = [e.get("event") for e in events(log)]
    assert (
        names.index("shutdown_requested")
        < names.index("server_draining")
        < names.index("server_stopped")
    )


async def test_rpc_log_line_has_method_code_duration(tmp_path, database_url):
    port = free_port()
    target = f"127.0.0.1:{port}"
    log = tmp_path / "server.log"
    proc = start_server("--listen", target, "--database-url", database_url, log=log)
    try:
        await wait_serving(target, proc)
        async with aio_channel(target) as channel:
            stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
            try:
                await stub.GetDefinition(
                    definition_service_pb2.GetDefinitionRequest(definition="missing")
                )
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
        assert await stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [e for e in events(log) if e.get("event") == "rpc_finished"]
    assert any(
        e["method"] == "/batchyard.v1.DefinitionService/GetDefinition"
        and e["code"] == "NOT_FOUND"
        and isinstance(e["duration_ms"], float)
        for e in lines
    ), lines


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and str(data_dir) in " ".join(cmdline):
            found.append(proc)
    return found


@pytest.fixture
def own_dir() -> Iterator[Path]:
    """A directory outside pytest's basetemp, which a concurrent pytest run may prune (a
    PostgreSQL whose data directory vanishes shuts down)."""
    path = Path(tempfile.mkdtemp(prefix="batchyard-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_embedded_postgres_is_reused_across_restarts_and_stopped(own_dir):
    tmp_path = own_dir
    data_dir = tmp_path / "data" / "pg"
    log = tmp_path / "server.log"
    env = {"DATABASE_URL": "", "BATCHYARD_DATABASE_URL": ""}
    config = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="true")
    token = bootstrap_token("--data-dir", str(data_dir), env=env)
    assert token.startswith("byt_")
    assert not postgres_processes(data_dir), "bootstrap stops the PostgreSQL it started"
    for round_no in range(2):
        port = free_port()
        target = f"127.0.0.1:{port}"
        proc = start_server("--listen", target, "--data-dir", str(data_dir), log=log, env=env)
        try:
            await wait_serving(target, proc, timeout=60)
            async with aio_channel(target, token=token) as channel:
                stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
                if round_no == 0:
                    await stub.CreateDefinition(
                        definition_service_pb2.CreateDefinitionRequest(
                            definition=definition_pb2.Definition(name="kept", config=config)
                        )
                    )
                else:
                    got = await stub.GetDefinition(
                        definition_service_pb2.GetDefinitionRequest(definition="kept")
                    )
                    assert got.definition.name == "kept"
            assert postgres_processes(data_dir), "the embedded PostgreSQL runs from the data dir"
            assert await stop(proc) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert not postgres_processes(data_dir), "the embedded PostgreSQL stops with the server"
    assert (data_dir / "PG_VERSION").exists()
    assert os.access(data_dir, os.R_OK)
