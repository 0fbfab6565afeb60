"""Outages of the service are not the job's fault (F1, F3), and a frozen worker gets no
work (F2): real server and worker subprocesses, short leases, the outage made for real
(the server stopped; the test's own PostgreSQL stopped), judged by what a user sees.

Each test fails without the service clock / worker fencing (leases expired during the
outage: the runs end FAILED, worker lost; the rescued run goes back to the frozen worker).
The database outage and the cut-off worker are longer: `uv run pytest -m fault
tests/e2e/test_outages.py` runs them.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from batchyard.server.embedded import start_embedded
from batchyard.v1 import definition_service_pb2_grpc, run_pb2, run_service_pb2_grpc
from tests import pg
from tests.e2e.jobs import define, submit
from tests.e2e.outages import CutProxy, Fleet, toll

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


@pytest.mark.fault
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


MAX_OUTAGE = 4.0
KILL_GRACE = 1.0


@pytest.mark.fault
async def test_a_cut_off_worker_stops_its_job_within_the_stated_overlap(tmp_path, database_url):
    """The worker behind the proxy gets no answer at all: the server rescues its run
    after the TTL and another worker runs it; the cut-off worker stops its job once no
    renewal succeeded for TTL + max-outage. The two attempts overlap by at most
    max-outage + the worker's kill grace (the bound server/README.md states)."""
    fleet = Fleet(tmp_path, database_url, ttl=TTL, max_outage=MAX_OUTAGE)
    proxy = CutProxy(fleet.target)
    ticks = tmp_path / "ticks"
    try:
        await fleet.start_server()
        await proxy.start()
        cut_off = fleet.start_worker("--slots", "1", "--server", proxy.address)
        tick = f'echo "$BATCHYARD_ATTEMPT $(date +%s.%N)" >> {ticks}'
        script = f"for i in $(seq 120); do {tick}; sleep 0.1; done"
        config = {
            "type": "JOB_TYPE_SHELL",
            "sourceLocation": "/bin/sh",
            "args": ["-c", script],
            "retryStrategy": {"numRetries": 0, "numInfraRetries": 1},
        }
        async with fleet.channel() as channel:
            await define(
                definition_service_pb2_grpc.DefinitionServiceStub(channel), "ticker", config
            )
            run = (await submit(run_service_pb2_grpc.RunServiceStub(channel), "ticker")).uuid
        await fleet.wait_running([run])
        fleet.start_worker("--slots", "1")  # idle until the run is rescued
        await asyncio.sleep(3)
        proxy.cut = True
        (done,) = await fleet.wait_finished([run], timeout=90)
        assert cut_off.poll() is None  # the cut-off worker stopped its job, not itself
        proxy.heal()
    finally:
        await proxy.close()
        await fleet.close()
    assert done.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [a.worker_id for a in done.attempts] == ["w0", "w1"]
    assert "lease_given_up" in (tmp_path / "worker-0.log").read_text()
    seen: dict[str, list[float]] = {"1": [], "2": []}
    for line in ticks.read_text().split("\n"):
        if line.strip():
            attempt, at = line.split()
            seen[attempt].append(float(at))
    overlap = max(seen["1"]) - min(seen["2"])
    print(f"overlap of attempts 1 and 2: {overlap:.2f} s (bound {MAX_OUTAGE + KILL_GRACE} s)")
    assert overlap <= MAX_OUTAGE + KILL_GRACE + 0.5, overlap
