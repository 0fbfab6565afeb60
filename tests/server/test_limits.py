"""The server's limits, each through the real server: message and metadata sizes, the
concurrency budget of each kind of call, deadlines, keepalive and idle connections,
undecodable requests, reflection on and off."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from batchyard.config import SettingsError
from batchyard.server import settings as server_settings
from batchyard.server.limits import Kind, ServerLimits
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import log_service_pb2, log_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.rpc import failure
from tests.server.helpers import define, get, lease, server_command, submit

pytestmark = pytest.mark.timeout(60)


def info_of(exc: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    assert status is not None, exc
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo in {exc}")


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def first_of(stream) -> Any:
    async for item in stream:
        return item
    raise AssertionError("the stream ended at once")


# ---------------------------------------------------------------- sizes


@pytest.mark.server(limits=ServerLimits(max_receive_message_bytes=64 * 1024))
async def test_a_request_over_the_size_limit_is_resource_exhausted(definitions):
    small = dpb.GetDefinitionRequest(definition="x" * 10_000)
    exc = await refused(definitions.GetDefinition(small, timeout=5))
    assert exc.code() == grpc.StatusCode.NOT_FOUND  # served
    # The name it echoes is cut, or the trailers would pass the client's metadata limit.
    assert len(exc.details() or "") < 1100
    assert (exc.details() or "").endswith("…")
    assert failure(exc).reason == "DEFINITION_NOT_FOUND"
    big = dpb.GetDefinitionRequest(definition="x" * 100_000)
    exc = await refused(definitions.GetDefinition(big, timeout=5))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (exc.details() or "")


@pytest.mark.server(limits=ServerLimits(max_send_message_bytes=4096))
async def test_a_response_over_the_size_limit_is_resource_exhausted(definitions):
    await define(definitions, "small")
    exc = await refused(define(definitions, "big", args=["a" * 1000] * 8))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # its answer was too big to send
    reply = await definitions.GetDefinition(dpb.GetDefinitionRequest(definition="small"))
    assert reply.definition.name == "small"
    exc = await refused(definitions.GetDefinition(dpb.GetDefinitionRequest(definition="big")))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_metadata_over_the_default_limit_is_resource_exhausted(definitions):
    request = dpb.GetDefinitionRequest(definition="missing")
    fits = (("x-note", "n" * 8000),)
    exc = await refused(definitions.GetDefinition(request, metadata=fits, timeout=5))
    assert exc.code() == grpc.StatusCode.NOT_FOUND
    too_much = (("x-note", "n" * 20_000),)
    exc = await refused(definitions.GetDefinition(request, metadata=too_much, timeout=5))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    many = tuple((f"x-key-{i}", "v" * 40) for i in range(400))
    exc = await refused(definitions.GetDefinition(request, metadata=many, timeout=5))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.server(limits=ServerLimits(max_metadata_bytes=2048))
async def test_the_metadata_limit_is_configurable(definitions):
    request = dpb.GetDefinitionRequest(definition="missing")
    exc = await refused(
        definitions.GetDefinition(request, metadata=(("x-note", "n" * 3000),), timeout=5)
    )
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# ---------------------------------------------------------------- budgets


async def holding(server, kind: Kind, count: int) -> None:
    """Wait until `count` calls hold a slot of the `kind` budget."""
    for _ in range(200):
        if server.budgets[kind].in_use == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{server.budgets[kind]} never held {count}")


@pytest.mark.server(limits=ServerLimits(max_concurrent_streams=2))
async def test_followers_have_their_own_budget(server, definitions, runs, workers):
    await define(definitions)
    run = await submit(runs)  # no worker: it stays pending, its watchers wait
    watch = rpb.WatchRunRequest(run=run.uuid)
    followers = [runs.WatchRun(watch) for _ in range(2)]
    for follower in followers:
        await first_of(follower)
    exc = await refused(first_of(runs.WatchRun(watch)))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "maximum of 2 concurrent streams" in (exc.details() or "")
    info = info_of(exc)
    assert info.reason == "CONCURRENCY_LIMIT"
    assert dict(info.metadata) == {"budget": "streams", "limit": "2"}
    # Short calls and workers' long-polls are served all the same.
    assert (await get(runs, run.uuid)).uuid == run.uuid
    assert await lease(workers, queues=["elsewhere"], wait=0) == []
    # A follower that leaves gives its slot back.
    followers[0].cancel()
    await holding(server, Kind.STREAMS, 1)
    newcomer = runs.WatchRun(watch)
    assert (await first_of(newcomer)).run.uuid == run.uuid
    for call in (followers[1], newcomer):
        call.cancel()
    await holding(server, Kind.STREAMS, 0)


@pytest.mark.server(limits=ServerLimits(max_concurrent_streams=1))
async def test_a_follower_past_its_deadline_is_dropped_and_frees_its_slot(
    server, definitions, runs, channel
):
    await define(definitions)
    run = await submit(runs)
    tail = log_service_pb2_grpc.LogServiceStub(channel)
    follow = log_service_pb2.TailLogsRequest(run=run.uuid)
    call = tail.TailLogs(follow, timeout=0.5)
    await holding(server, Kind.STREAMS, 1)
    exc = await refused(first_of(call))
    assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await holding(server, Kind.STREAMS, 0)  # the server dropped it too


async def test_a_long_poll_answers_before_its_callers_deadline(server, workers):
    """The worker asked to wait 20 s but gave the call 1.5 s: the server answers before
    the caller gives up (a run leased into a call that already failed would sit idle
    until its lease expired), and the poll's budget slot is free again."""
    request = wpb.LeaseRunsRequest(
        worker_id="w", queues=["empty"], max_runs=1, wait=duration_pb2.Duration(seconds=20)
    )
    reply = await workers.LeaseRuns(request, timeout=1.5)
    assert list(reply.runs) == []
    await holding(server, Kind.LEASE_POLLS, 0)


@pytest.mark.server(limits=ServerLimits(max_concurrent_lease_polls=1))
async def test_workers_long_polls_have_their_own_budget(server, definitions, runs, workers):
    waiting = asyncio.create_task(lease(workers, queues=["empty"], wait=10))
    await holding(server, Kind.LEASE_POLLS, 1)
    exc = await refused(lease(workers, queues=["empty"], wait=0))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(info_of(exc).metadata) == {"budget": "lease_polls", "limit": "1"}
    await define(definitions)  # short calls still go through
    run = await submit(runs)
    watch = await first_of(runs.WatchRun(rpb.WatchRunRequest(run=run.uuid), timeout=5))
    assert watch.run.uuid == run.uuid  # ... and followers
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await waiting
    await holding(server, Kind.LEASE_POLLS, 0)


async def held_upload(release: asyncio.Event) -> AsyncIterator[wpb.AppendLogsRequest]:
    await release.wait()
    nothing: list[wpb.AppendLogsRequest] = []
    for request in nothing:
        yield request


@pytest.mark.server(limits=ServerLimits(max_concurrent_calls=1))
async def test_short_calls_have_a_budget_that_followers_do_not_take(
    server, definitions, runs, workers
):
    await define(definitions)
    run = await submit(runs)
    follower = runs.WatchRun(rpb.WatchRunRequest(run=run.uuid))
    await first_of(follower)  # a follower does not take a short call's slot
    assert (await get(runs, run.uuid)).uuid == run.uuid
    release = asyncio.Event()
    upload = workers.AppendLogs(held_upload(release))  # holds the only slot until released
    await holding(server, Kind.CALLS, 1)
    exc = await refused(get(runs, run.uuid))
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert dict(info_of(exc).metadata) == {"budget": "calls", "limit": "1"}
    release.set()
    with contextlib.suppress(grpc.aio.AioRpcError):
        await upload
    await holding(server, Kind.CALLS, 0)
    assert (await get(runs, run.uuid)).uuid == run.uuid
    follower.cancel()


def test_grpcs_own_limit_stays_above_every_budget():
    limits = ServerLimits(
        max_concurrent_calls=10,
        max_concurrent_streams=20,
        max_concurrent_lease_polls=30,
        max_concurrent_probes=5,
    )
    assert limits.grpc_concurrency() > 10 + 20 + 30 + 5


# ---------------------------------------------------------------- connections


@pytest.mark.server(limits=ServerLimits(max_connection_idle_seconds=0.3))
async def test_an_idle_connection_is_closed(target):
    async with grpc.aio.insecure_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        await check(health_pb2.HealthCheckRequest(), timeout=5)
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        for _ in range(100):
            if channel.get_state() == grpc.ChannelConnectivity.IDLE:
                break
            await asyncio.sleep(0.05)
        assert channel.get_state() == grpc.ChannelConnectivity.IDLE


@pytest.mark.server(limits=ServerLimits(min_ping_interval_seconds=5))
async def test_a_client_pinging_too_often_is_disconnected(definitions, runs, target, admin_token):
    """Two followers of the same run: the one whose client pings every 100 ms is cut off
    (GOAWAY too_many_pings); the other follows on."""
    await define(definitions)
    run = await submit(runs)
    rude = grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.keepalive_time_ms", 100),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    metadata = (("authorization", f"Bearer {admin_token}"),)
    watch = rpb.WatchRunRequest(run=run.uuid)
    try:
        rude_call = rude.unary_stream(
            "/batchyard.v1.RunService/WatchRun",
            request_serializer=rpb.WatchRunRequest.SerializeToString,
            response_deserializer=rpb.WatchRunResponse.FromString,
        )(watch, metadata=metadata, timeout=30)
        polite_call = runs.WatchRun(watch)
        await first_of(rude_call)
        await first_of(polite_call)
        exc = await refused(first_of(rude_call))
        assert exc.code() == grpc.StatusCode.UNAVAILABLE
        assert "ping" in (exc.details() or "").lower()
        assert not polite_call.done()
        polite_call.cancel()
    finally:
        await rude.close(None)


# ---------------------------------------------------------------- decoding


async def test_undecodable_requests_are_invalid_arguments_for_callers_with_a_token(channel, target):
    get_definition = channel.unary_unary(
        "/batchyard.v1.DefinitionService/GetDefinition", None, None
    )
    for garbage, why in ((b"\xff\xff\xff", "corrupt"), (b"\x0a\x02\xff\xfe", "UTF-8")):
        exc = await refused(get_definition(garbage, timeout=5))
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert failure(exc).reason == "INVALID_FIELD"
        assert "not a valid batchyard.v1.GetDefinitionRequest" in (exc.details() or "")
        assert why in (exc.details() or "")
    async with grpc.aio.insecure_channel(target) as anonymous:
        call = anonymous.unary_unary("/batchyard.v1.DefinitionService/GetDefinition", None, None)
        exc = await refused(call(b"\xff\xff\xff", timeout=5))
        assert exc.code() == grpc.StatusCode.UNAUTHENTICATED  # credentials come first
        health = anonymous.unary_unary("/grpc.health.v1.Health/Check", None, None)
        exc = await refused(health(b"\xff\xff\xff", timeout=5))
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_undecodable_upload_message_is_an_invalid_argument(channel):
    upload = channel.stream_unary("/batchyard.v1.WorkerService/AppendLogs", None, None)
    exc = await refused(upload(iter([b"\x0a\x01"]), timeout=5))
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "AppendLogsRequest" in (exc.details() or "")


# ---------------------------------------------------------------- reflection


async def reflected_services(target: str) -> list[str] | grpc.StatusCode:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        try:
            async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
                return sorted(s.name for s in reply.list_services_response.service)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return []


async def test_reflection_is_on_by_default(target):
    services = await reflected_services(target)
    assert isinstance(services, list)
    assert "batchyard.v1.RunService" in services


@pytest.mark.server(reflection=False)
async def test_reflection_can_be_turned_off(target):
    assert await reflected_services(target) == grpc.StatusCode.UNIMPLEMENTED


# ---------------------------------------------------------------- flags


def parse(*argv: str) -> server_settings.ServerSettings:
    parser = argparse.ArgumentParser()
    server_settings.add_arguments(parser)
    return server_settings.from_args(parser.parse_args(list(argv)))


def test_limit_flags_and_environment(monkeypatch):
    monkeypatch.setenv("BATCHYARD_MAX_CONCURRENT_STREAMS", "7")
    monkeypatch.setenv("BATCHYARD_REFLECTION", "0")
    settings = parse("--max-receive-message-size", "4MiB", "--max-metadata-size", "32KiB")
    assert settings.limits.max_receive_message_bytes == 4 * 1024 * 1024
    assert settings.limits.max_metadata_bytes == 32 * 1024
    assert settings.limits.max_concurrent_streams == 7
    assert settings.reflection is False
    assert parse("--reflection").reflection is True
    assert parse("--max-connection-age", "600").limits.max_connection_age_seconds == 600
    with pytest.raises(SettingsError, match="--max-send-message-size: not a size: 'lots'"):
        parse("--max-send-message-size", "lots")
    with pytest.raises(SettingsError, match="--max-concurrent-calls: must be at least 1: 0"):
        parse("--max-concurrent-calls", "0")
    with pytest.raises(ValueError, match="at least 1KiB"):
        parse("--max-metadata-size", "100")


def test_sizes_and_durations_share_the_grammar_of_every_process():
    settings = parse(
        "--max-receive-message-size",
        "1GiB",
        "--max-send-message-size",
        "1.5MiB",
        "--grace",
        "90s",
        "--lease-ttl",
        "5m",
        "--keepalive-time",
        "2m",
    )
    assert settings.limits.max_receive_message_bytes == 1024**3
    assert settings.limits.max_send_message_bytes == 1024 * 1024 * 3 // 2
    assert settings.grace_seconds == 90 and settings.lease_ttl_seconds == 300
    assert settings.limits.keepalive_time_seconds == 120
    assert parse("--grace", "2.5").grace_seconds == 2.5  # plain seconds, as before
    with pytest.raises(SettingsError, match=r"--lease-ttl: must be at most 1h: 2h"):
        parse("--lease-ttl", "2h")


def test_a_bad_value_is_one_line_naming_the_flag(tmp_path):
    done = server_command(tmp_path, "--pool-size", "0")
    assert done.returncode == 2
    assert done.stderr == "batchyard server: --pool-size: must be at least 1: 0\n"


def test_the_defaults_are_in_the_help(capsys):
    parser = argparse.ArgumentParser()
    server_settings.add_arguments(parser)
    text = parser.format_help()
    for shown in (
        "BATCHYARD_MAX_RECEIVE_MESSAGE_SIZE; default 8MiB",
        "BATCHYARD_MAX_METADATA_SIZE; default 16KiB",
        "BATCHYARD_MAX_CONCURRENT_STREAMS; default 2000",
        "BATCHYARD_KEEPALIVE_TIME; default 1m",
        "--no-reflection",
    ):
        assert shown in " ".join(text.split()), shown
