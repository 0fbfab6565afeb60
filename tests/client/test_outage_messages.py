"""Honest outages, with a real server stopped and started again: followers and watchers
say the server is unreachable (with how long) and when it is back; one that starts
during an outage waits it out; a stopping server ends open streams at once with
UNAVAILABLE, so its clients reconnect instead of holding the shutdown."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from batchyard.client import Client
from batchyard.client.connection import aio_channel
from batchyard.v1 import definition_service_pb2_grpc, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as rpb
from tests.client.acting import create_definition
from tests.client.cli_runner import Cli
from tests.client.test_cli_logs import submitted
from tests.client.test_logs_client import Restartable
from tests.rpc import failure

OUTAGE_SECONDS = 2.5


async def outage(srv: Restartable, seconds: float = OUTAGE_SECONDS) -> None:
    """Stop the server, wait, and start it again on the same port."""
    port = srv.app.port
    await srv.channel.close()
    await srv.app.stop(0)
    await asyncio.sleep(seconds)
    await srv.start(port)


@pytest.mark.parametrize("command", [["runs", "watch"], ["logs", "--follow"]])
async def test_a_watcher_says_the_server_is_unreachable_then_back(server_factory, capsys, command):
    srv = await Restartable(server_factory).start()
    try:
        run_id = await submitted(srv.definitions, srv.runs)
        cli = Cli(capsys, srv.target, command[0])
        watching = asyncio.create_task(cli(*_argv(command, run_id)))
        await asyncio.sleep(0.5)
        await outage(srv)
        leased = await srv.worker.lease()
        await srv.worker.succeed(leased)
        code, _out, err = await asyncio.wait_for(watching, 60)
    finally:
        await srv.close()
    assert code == 0, err
    assert "server unreachable, retrying (0:00:0" in err
    assert "server reachable again (unreachable for 0:00:0" in err
    assert err.index("server unreachable") < err.index("server reachable again")


def _argv(command: list[str], run_id: str) -> list[str]:
    group, *rest = command
    return ["watch", run_id] if group == "runs" else [run_id, *rest]


async def test_a_wait_that_starts_during_an_outage_waits_it_out(server_factory, admin_token):
    """F4: the SDK's wait() begun while the server is down does not give up at once."""
    srv = await Restartable(server_factory).start()
    try:
        run_id = await submitted(srv.definitions, srv.runs)
        client = Client(srv.target, token=admin_token)
        run = await asyncio.to_thread(client.run, run_id)  # the handle, as after submit
        port = srv.app.port
        await srv.channel.close()
        await srv.app.stop(0)
        told: list[float | None] = []
        waiting = asyncio.create_task(
            asyncio.to_thread(run.wait, show_progress=False, on_outage=told.append)
        )
        await asyncio.sleep(7)  # longer than the unary retries (~5 s)
        assert not waiting.done(), "it waits, it does not give up"
        await srv.start(port)
        leased = await srv.worker.lease()
        await srv.worker.succeed(leased)
        assert (await asyncio.wait_for(waiting, 60)).finished
        client.close()
    finally:
        await srv.close()
    assert any(t is not None for t in told) and told[-1] is None


async def test_a_stopping_server_ends_open_streams_at_once_with_unavailable(
    server_factory, admin_token
):
    app = await server_factory(grace_seconds=20)
    async with aio_channel(f"127.0.0.1:{app.port}", token=admin_token) as channel:
        await create_definition(definition_service_pb2_grpc.DefinitionServiceStub(channel), "job")
        runs = run_service_pb2_grpc.RunServiceStub(channel)
        run = (await runs.SubmitRun(rpb.SubmitRunRequest(definition="job"))).run
        stream = runs.WatchRun(rpb.WatchRunRequest(run=run.uuid))
        first = await stream.read()
        assert isinstance(first, rpb.WatchRunResponse) and first.run.uuid == run.uuid
        stopping = asyncio.create_task(app.stop())
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stream.read()
        got = failure(ended.value)
        assert got.code == grpc.StatusCode.UNAVAILABLE and got.reason == "SERVER_UNAVAILABLE"
        assert "shutting down" in got.message
        await asyncio.wait_for(stopping, 15)  # not the 20 s grace
