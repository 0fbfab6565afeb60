"""Outages of the service are not the job's fault (F1, F3), and a frozen worker gets no
work (F2): real server and worker subprocesses, short leases, the outage made for real
(the server stopped; the test's own PostgreSQL stopped), judged by what a user sees.

Each test fails without the service clock / worker fencing (leases expired during the
outage: the runs end FAILED, worker lost; the rescued run goes back to the frozen worker).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from batchyard.server.embedded import start_embedded
from batchyard.v1 import run_pb2
from tests import pg
from tests.e2e.outages import Fleet, toll

TTL = 2.0
OUTAGE = 8.0  # four leases long


async def test_a_server_restart_longer_than_the_lease_kills_no_job(tmp_path, database_url):
    fleet = Fleet(tmp_path, database_url, ttl=TTL)
    try:
        await fleet.start_server()
        fleet.start_worker("--slots", "2")
        fleet.start_worker("--slots", "2")
        ids = await fleet.submit_sleepers(3, OUTAGE + 8)
        await fleet.wait_running(ids)
        await fleet.stop_server(signal.SIGKILL)
        await asyncio.sleep(OUTAGE)
        await fleet.start_server()
        done = await fleet.wait_finished(ids, timeout=60)
    finally:
        await fleet.close()
    assert str(toll(done)) == "3 runs: 0 killed, 0 retries spent", [
        (run_pb2.RunStatus.Name(r.status), r.message) for r in done
    ]
    assert all(len(r.attempts) == 1 for r in done)


@pytest.fixture
async def own_postgres():
    """A PostgreSQL of this test's own (the suite's is shared): a migrated database URL and
    an admin token; `stop` and `start` it. Not under pytest's tmp_path (PostgreSQL's own
    user must reach it)."""
    home = Path(tempfile.mkdtemp(prefix="batchyard-outage-pg-"))
    data = home / "data"
    server = await start_embedded(data)
    name, token = await pg.create_template(server.admin_dsn)

    class Handle:
        url = pg.dsn_for(server.admin_dsn, name)
        admin_token = token
        current = server

        async def stop(self) -> None:
            await self.current.stop()

        async def start(self) -> None:
            self.current = await start_embedded(data)

    handle = Handle()
    yield handle
    await handle.current.stop()
    shutil.rmtree(home, ignore_errors=True)


async def test_a_database_outage_longer_than_the_lease_kills_no_job(tmp_path, own_postgres):
    fleet = Fleet(tmp_path, own_postgres.url, ttl=TTL, token=own_postgres.admin_token)
    try:
        await fleet.start_server()
        fleet.start_worker("--slots", "2")
        fleet.start_worker("--slots", "2")
        ids = await fleet.submit_sleepers(3, OUTAGE + 8)
        await fleet.wait_running(ids)
        await own_postgres.stop()
        await asyncio.sleep(OUTAGE)
        await own_postgres.start()
        done = await fleet.wait_finished(ids, timeout=60)
    finally:
        await fleet.close()
    assert str(toll(done)) == "3 runs: 0 killed, 0 retries spent", [
        (run_pb2.RunStatus.Name(r.status), r.message) for r in done
    ]


async def test_a_run_rescued_from_a_frozen_worker_goes_to_a_live_one(tmp_path, database_url):
    fleet = Fleet(tmp_path, database_url, ttl=TTL)
    try:
        await fleet.start_server()
        frozen = fleet.start_worker("--slots", "2")  # one slot left: a long-poll stays open
        (run,) = await fleet.submit_sleepers(1, 6, infra_retries=1)
        await fleet.wait_running([run])
        frozen.send_signal(signal.SIGSTOP)
        # The lease expires; the rescued run must not go to the frozen worker's open poll.
        (rescued,) = await fleet.wait_all(
            [run], lambda r: len(r.attempts) >= 2 or r.status != run_pb2.RUN_STATUS_RUNNING, 30
        )
        await asyncio.sleep(1.5)  # the frozen worker's poll had its chance
        (waiting,) = await fleet.runs([run])
        fleet.start_worker("--slots", "1")
        (done,) = await fleet.wait_finished([run], timeout=60)
        frozen.send_signal(signal.SIGCONT)
    finally:
        await fleet.close()
    assert waiting.status == run_pb2.RUN_STATUS_PENDING, [
        (a.worker_id, run_pb2.RunStatus.Name(a.status)) for a in waiting.attempts
    ]
    assert done.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [a.worker_id for a in done.attempts] == ["w0", "w1"]
    assert done.attempts[0].reason == run_pb2.RUN_REASON_WORKER_LOST
    assert rescued.attempts[0].reason == run_pb2.RUN_REASON_WORKER_LOST
