"""Queues with real worker processes: the concurrency limit across two workers of 32
slots each (judged from the attempts' start and end times), pause and resume, and
priority across the queues one worker serves."""

from __future__ import annotations

import asyncio

from batchyard.v1 import queue_pb2, run_pb2
from batchyard.v1 import queue_service_pb2 as qpb
from batchyard.v1 import run_service_pb2 as rpb
from tests.e2e.jobs import define, submit, wait_for
from tests.server.helpers import make_queue

LIMIT = 3


def shell_job(script: str, **config: object) -> dict[str, object]:
    return {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh", "args": ["-c", script], **config}


def most_at_once(runs: list[run_pb2.Run]) -> int:
    """The most attempts that were running at the same moment (an end at the same
    instant as a start counts first: the limit frees its slot at the end)."""
    events = []
    for run in runs:
        for a in run.attempts:
            events.append((a.start_time.ToNanoseconds(), 1))
            events.append((a.end_time.ToNanoseconds(), -1))
    now = top = 0
    for _, step in sorted(events):
        now += step
        top = max(top, now)
    return top


async def set_state(queues, name: str, state: queue_pb2.QueueState.ValueType) -> None:
    request = qpb.UpdateQueueRequest(queue=name, changes=queue_pb2.Queue(state=state))
    request.update_mask.paths.append("state")
    await queues.UpdateQueue(request)


async def test_the_limit_holds_across_two_workers_of_32_slots(
    definitions, runs, queues, start_worker
):
    await make_queue(queues, "capped", concurrencyLimit=LIMIT)
    await define(definitions, "nap", shell_job("sleep 0.2", queue="capped"))
    await define(definitions, "free", shell_job("sleep 0.2"))
    start_worker("--slots", "32", "--queues", "capped,default")
    start_worker("--slots", "32", "--queues", "capped,default")
    batch = [rpb.SubmitRunRequest(definition="nap") for _ in range(60)]
    batch += [rpb.SubmitRunRequest(definition="free") for _ in range(20)]
    reply = await runs.BatchSubmitRuns(rpb.BatchSubmitRunsRequest(requests=batch))
    ids = [r.run.uuid for r in reply.responses]
    finals = [await wait_for(runs, run_id, timeout=90) for run_id in ids]
    assert all(f.status == run_pb2.RUN_STATUS_SUCCEEDED for f in finals)
    capped, free = finals[:60], finals[60:]
    assert most_at_once(capped) == LIMIT  # reached, never exceeded
    assert {f.attempts[0].worker_id for f in capped} == {"w0", "w1"}
    assert most_at_once(free) > LIMIT  # the unlimited queue beside it is not held back


async def test_pause_holds_runs_from_real_workers_and_resume_releases_them(
    definitions, runs, queues, start_worker
):
    await make_queue(queues, "held")
    await define(definitions, "quick", shell_job("true", queue="held"))
    start_worker("--slots", "4", "--queues", "held")
    first = await submit(runs, "quick")
    await wait_for(runs, first.uuid)
    await set_state(queues, "held", queue_pb2.QUEUE_STATE_PAUSED)
    held = [(await submit(runs, "quick")).uuid for _ in range(5)]
    await asyncio.sleep(1.5)  # a worker polling all along
    for run_id in held:
        run = (await runs.GetRun(rpb.GetRunRequest(run=run_id))).run
        assert run.status == run_pb2.RUN_STATUS_PENDING
        assert run.reason == run_pb2.RUN_REASON_QUEUE_PAUSED
    await set_state(queues, "held", queue_pb2.QUEUE_STATE_ENABLED)
    finals = [await wait_for(runs, run_id) for run_id in held]
    assert all(f.status == run_pb2.RUN_STATUS_SUCCEEDED for f in finals)


async def test_one_worker_drains_the_higher_priority_queue_first(
    definitions, runs, queues, start_worker
):
    await make_queue(queues, "high", priority=5)
    await make_queue(queues, "low", priority=-5)
    await define(definitions, "hi", shell_job("true", queue="high"))
    await define(definitions, "lo", shell_job("true", queue="low"))
    lows = [(await submit(runs, "lo", overrides={"priority": 100})).uuid for _ in range(3)]
    highs = [(await submit(runs, "hi")).uuid for _ in range(3)]
    start_worker("--slots", "1", "--queues", "low,high")
    finals = {run_id: await wait_for(runs, run_id) for run_id in lows + highs}
    order = sorted(finals, key=lambda r: finals[r].attempts[0].start_time.ToNanoseconds())
    assert order == highs + lows
