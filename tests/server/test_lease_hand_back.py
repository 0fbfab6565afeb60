"""A lease whose caller went away is handed back at once: a worker that cancels its
LeaseRuns (shutting down) while the server is leasing does not leave a run RUNNING under
a lease nobody received until that lease expires."""

from __future__ import annotations

import asyncio

import pytest

from batchyard.server.db import leases
from batchyard.v1 import run_pb2
from batchyard.v1 import worker_service_pb2 as wpb
from tests.server.helpers import define, get, lease, submit


@pytest.fixture
def slow_lease(monkeypatch):
    """The server's lease statement takes a while to answer once it leased something,
    so the caller can go away in between (set `leased` when it has leased)."""
    real = leases.lease
    leased = asyncio.Event()

    async def slow(*args, **kwargs):
        found = await real(*args, **kwargs)
        if found:
            leased.set()
            await asyncio.sleep(0.5)
        return found

    monkeypatch.setattr(leases, "lease", slow)
    return leased


async def test_a_cancelled_long_poll_hands_its_runs_back(definitions, runs, workers, slow_lease):
    await define(definitions)
    poll = asyncio.ensure_future(lease(workers, wait=10, worker_id="going-away"))
    await asyncio.sleep(0.2)  # the long-poll is waiting for work
    run = await submit(runs)
    await asyncio.wait_for(slow_lease.wait(), 10)  # leased to the poll, not yet answered
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    for _ in range(100):
        state = await get(runs, run.uuid)
        if state.status == run_pb2.RUN_STATUS_PENDING:
            break
        await asyncio.sleep(0.05)
    assert state.status == run_pb2.RUN_STATUS_PENDING
    assert list(state.attempts) == []  # never leased, as far as its history goes
    again = await lease(workers, wait=5, worker_id="still-here")
    assert [(r.run, r.attempt) for r in again] == [(run.uuid, 1)]


async def test_an_answered_lease_is_kept(definitions, runs, workers, slow_lease):
    await define(definitions)
    run = await submit(runs)
    got = await lease(workers, wait=5)
    assert [(r.run, r.attempt) for r in got] == [(run.uuid, 1)]
    state = await get(runs, run.uuid)
    assert state.status == run_pb2.RUN_STATUS_RUNNING
    assert isinstance(got[0], wpb.LeasedRun)
