"""AppendLogs, GetLogs, TailLogs and WatchRun against a real server and PostgreSQL."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import timestamp_pb2

from batchyard.v1 import log_pb2, log_service_pb2_grpc, run_pb2
from batchyard.v1 import log_service_pb2 as lpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.rpc import failure
from tests.server.helpers import complete, define, lease, submit

OUT, ERR, SYS = log_pb2.LOG_STREAM_STDOUT, log_pb2.LOG_STREAM_STDERR, log_pb2.LOG_STREAM_SYSTEM
INFO, WARN = log_pb2.LOG_LEVEL_INFO, log_pb2.LOG_LEVEL_WARNING


@pytest.fixture
def logs(channel):
    return log_service_pb2_grpc.LogServiceStub(channel)


def entry(
    seq: int, stream: log_pb2.LogStream.ValueType = OUT, message: str | None = None
) -> log_pb2.LogEntry:
    level = WARN if stream == ERR else INFO
    text = f"line {seq}" if message is None else message
    return log_pb2.LogEntry(
        seq=seq, stream=stream, level=level, message=text, time=timestamp_pb2.Timestamp(seconds=1)
    )


async def append(workers, leased, *batches: list[log_pb2.LogEntry]) -> int:
    requests = [
        wpb.AppendLogsRequest(
            run=leased.run, attempt=leased.attempt, lease_id=leased.lease_id, entries=b
        )
        for b in batches
    ]
    return (await workers.AppendLogs(iter(requests))).acked_seq


async def started(definitions, runs, workers, **config):
    await define(definitions, **config)
    run = await submit(runs, "job")
    (leased,) = await lease(workers)
    return run, leased


async def read_all(logs, run_id: str, **fields) -> list[tuple[int, int, str]]:
    out, token = [], ""
    while True:
        page = await logs.GetLogs(lpb.GetLogsRequest(run=run_id, page_token=token, **fields))
        out += [(e.attempt, e.seq, e.message) for e in page.entries]
        token = page.next_page_token
        if not token:
            return out


async def test_batches_are_stored_in_order_and_paged(definitions, runs, workers, logs):
    run, leased = await started(definitions, runs, workers)
    lines = [entry(i, ERR if i % 3 == 0 else OUT) for i in range(1, 2501)]
    acked = await append(workers, leased, lines[:1000], lines[1000:2000], lines[2000:])
    assert acked == 2500
    got = await read_all(logs, run.uuid, page_size=333)
    assert got == [(1, i, f"line {i}") for i in range(1, 2501)]
    page = await logs.GetLogs(lpb.GetLogsRequest(run=run.uuid, page_size=10))
    assert page.entries[0].run == run.uuid and page.entries[0].stream == OUT
    assert page.last_position == log_pb2.LogPosition(attempt=1, seq=10) and not page.run_finished


async def test_resume_from_every_position_has_no_gap_and_no_duplicate(
    definitions, runs, workers, logs
):
    run, leased = await started(definitions, runs, workers)
    await append(workers, leased, [entry(i) for i in range(1, 41)])
    for seq in range(41):
        after = log_pb2.LogPosition(attempt=1 if seq else 0, seq=seq)
        page = await logs.GetLogs(lpb.GetLogsRequest(run=run.uuid, after=after))
        assert [e.seq for e in page.entries] == list(range(seq + 1, 41))


async def test_a_resend_is_stored_once_and_a_gap_is_refused(definitions, runs, workers, logs):
    run, leased = await started(definitions, runs, workers)
    assert await append(workers, leased, [entry(i) for i in range(1, 11)]) == 10
    # A worker that lost the ack resends from an older position: only 11..15 are new.
    assert await append(workers, leased, [entry(i) for i in range(6, 16)]) == 15
    assert await append(workers, leased, [entry(i) for i in range(1, 6)]) == 15
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await append(workers, leased, [entry(i) for i in range(20, 25)])
    got = failure(info.value)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT and "entries[0].seq" in got.fields
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await append(workers, leased, [entry(16), entry(18)])
    assert "entries[1].seq" in failure(info.value).fields
    assert [s for _, s, _ in await read_all(logs, run.uuid)] == list(range(1, 16))


async def test_a_worker_without_its_lease_is_refused(definitions, runs, workers, logs):
    run, leased = await started(definitions, runs, workers)
    forged = wpb.LeasedRun(
        run=leased.run, attempt=leased.attempt, lease_id="6f748a1b-251c-48b5-935a-a1974c3dbf7b"
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await append(workers, forged, [entry(1)])
    got = failure(info.value)
    assert got.code == grpc.StatusCode.ABORTED and got.reason == "LEASE_LOST"
    await complete(workers, leased)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await append(workers, leased, [entry(1)])
    assert failure(info.value).reason == "LEASE_LOST"
    assert await read_all(logs, run.uuid) == []


async def test_filters_by_level_stream_and_attempt(definitions, runs, workers, logs):
    await define(definitions, retryStrategy={"numRetries": 1, "delayBetweenRetries": "0s"})
    run = await submit(runs, "job")
    (first,) = await lease(workers)
    await append(workers, first, [entry(1), entry(2, ERR), entry(3, SYS, "attempt ended")])
    await complete(
        workers,
        first,
        run_pb2.RUN_STATUS_FAILED,
        reason=run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE,
        exit_code=1,
    )
    (second,) = await lease(workers)
    await append(workers, second, [entry(1, ERR, "again")])
    assert await read_all(logs, run.uuid) == [
        (1, 1, "line 1"),
        (1, 2, "line 2"),
        (1, 3, "attempt ended"),
        (2, 1, "again"),
    ]
    assert await read_all(logs, run.uuid, min_level=WARN) == [(1, 2, "line 2"), (2, 1, "again")]
    assert await read_all(logs, run.uuid, streams=[SYS]) == [(1, 3, "attempt ended")]
    assert await read_all(logs, run.uuid, attempt=2) == [(2, 1, "again")]


async def test_unknown_run_and_bad_requests(logs, runs):
    missing = "6f748a1b-251c-48b5-935a-a1974c3dbf7b"
    for call in (
        logs.GetLogs(lpb.GetLogsRequest(run=missing)),
        anext(logs.TailLogs(lpb.TailLogsRequest(run=missing)).__aiter__()),
        anext(runs.WatchRun(rpb.WatchRunRequest(run=missing)).__aiter__()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert failure(info.value).code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await logs.GetLogs(lpb.GetLogsRequest(run=missing, min_level=9))  # type: ignore[arg-type]
    got = failure(info.value)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT and "min_level" in got.fields


async def follow(logs, run_id: str, **fields) -> list[tuple[int, int]]:
    seen = []
    async for response in logs.TailLogs(lpb.TailLogsRequest(run=run_id, **fields)):
        seen += [(e.attempt, e.seq) for e in response.entries]
    return seen


async def test_followers_before_during_and_after_the_run_see_every_line_once(
    definitions, runs, workers, logs
):
    await define(definitions)
    run = await submit(runs, "job")
    early = asyncio.create_task(follow(logs, run.uuid))
    (leased,) = await lease(workers)
    for start in range(1, 301, 50):
        await append(workers, leased, [entry(i) for i in range(start, start + 50)])
        if start == 101:
            middle = asyncio.create_task(follow(logs, run.uuid))
            fresh = asyncio.create_task(follow(logs, run.uuid, only_new=True))
        await asyncio.sleep(0.02)
    await complete(workers, leased)
    late = await follow(logs, run.uuid)
    everything = [(1, i) for i in range(1, 301)]
    assert await asyncio.wait_for(early, 10) == everything
    assert await asyncio.wait_for(middle, 10) == everything
    only_new = await asyncio.wait_for(fresh, 10)
    assert only_new == everything[-len(only_new) :] and len(only_new) <= 150
    assert late == everything


async def test_a_follower_resumes_from_its_position(definitions, runs, workers, logs):
    run, leased = await started(definitions, runs, workers)
    await append(workers, leased, [entry(i) for i in range(1, 101)])
    stream = logs.TailLogs(lpb.TailLogsRequest(run=run.uuid))
    first = await stream.read()
    stream.cancel()
    resume = first.position
    await append(workers, leased, [entry(i) for i in range(101, 121)])
    await complete(workers, leased)
    rest = await follow(logs, run.uuid, after=resume)
    assert [s for _, s in rest] == list(range(resume.seq + 1, 121))


async def test_watch_streams_changes_until_the_run_ends(definitions, runs, workers):
    await define(definitions)
    run = await submit(runs, "job")
    states = []

    async def watch(after: int = 0):
        async for response in runs.WatchRun(
            rpb.WatchRunRequest(run=run.uuid, after_revision=after)
        ):
            states.append(response.run)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    (leased,) = await lease(workers)
    await workers.RenewLease(
        wpb.RenewLeaseRequest(
            run=leased.run, attempt=leased.attempt, lease_id=leased.lease_id, progress=60
        )
    )
    await asyncio.sleep(0.2)
    await complete(workers, leased, progress=100)
    await asyncio.wait_for(watcher, 10)
    statuses = [s.status for s in states]
    assert (
        statuses[0] == run_pb2.RUN_STATUS_PENDING and statuses[-1] == run_pb2.RUN_STATUS_SUCCEEDED
    )
    assert run_pb2.RUN_STATUS_RUNNING in statuses
    assert any(s.progress == 60 for s in states)
    revisions = [s.revision for s in states]
    assert revisions == sorted(set(revisions)), "each state once, in order"
    # Resuming after the last revision seen of a finished run sends nothing more.
    later = [
        r
        async for r in runs.WatchRun(
            rpb.WatchRunRequest(run=run.uuid, after_revision=revisions[-1])
        )
    ]
    assert later == []


async def test_logs_outlive_the_run_and_go_with_delete(definitions, runs, workers, logs):
    run, leased = await started(definitions, runs, workers)
    await append(workers, leased, [entry(i) for i in range(1, 6)])
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    await complete(workers, leased, run_pb2.RUN_STATUS_CANCELLED)
    page = await logs.GetLogs(lpb.GetLogsRequest(run=run.uuid))
    assert len(page.entries) == 5 and page.run_finished
    await runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await logs.GetLogs(lpb.GetLogsRequest(run=run.uuid))
    assert failure(info.value).code == grpc.StatusCode.NOT_FOUND


async def test_complete_run_can_carry_the_last_log_entries(definitions, runs, workers, logs):
    run, leased = await started(definitions, runs, workers)
    await append(workers, leased, [entry(i) for i in range(1, 4)])
    final = wpb.AppendLogsRequest(
        run=leased.run,
        attempt=leased.attempt,
        lease_id=leased.lease_id,
        entries=[entry(i) for i in range(3, 7)],
    )
    done = await complete(workers, leased, logs=final)
    assert done.run_status == run_pb2.RUN_STATUS_SUCCEEDED
    again = await complete(workers, leased, logs=final)  # a repeat stores nothing twice
    assert again.run_status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [s for _, s, _ in await read_all(logs, run.uuid)] == [1, 2, 3, 4, 5, 6]


async def test_complete_run_refuses_logs_of_another_lease_or_with_a_gap(
    definitions, runs, workers, logs
):
    run, leased = await started(definitions, runs, workers)
    forged = wpb.AppendLogsRequest(
        run=leased.run,
        attempt=leased.attempt,
        lease_id="6f748a1b-251c-48b5-935a-a1974c3dbf7b",
        entries=[entry(1)],
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await complete(workers, leased, logs=forged)
    assert "logs.run" in failure(info.value).fields
    gap = wpb.AppendLogsRequest(
        run=leased.run, attempt=leased.attempt, lease_id=leased.lease_id, entries=[entry(5)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await complete(workers, leased, logs=gap)
    assert "logs.entries[0].seq" in failure(info.value).fields
    assert (
        await runs.GetRun(rpb.GetRunRequest(run=run.uuid))
    ).run.status == run_pb2.RUN_STATUS_RUNNING


async def test_a_short_attempts_whole_log_can_come_with_its_completion(
    definitions, runs, workers, logs
):
    run, leased = await started(definitions, runs, workers)
    await append(workers, leased, [entry(1)])
    final = wpb.AppendLogsRequest(
        run=leased.run,
        attempt=leased.attempt,
        lease_id=leased.lease_id,
        entries=[entry(i) for i in (2, 3)],
    )
    done = await complete(workers, leased, logs=final, progress=100)
    assert done.run_status == run_pb2.RUN_STATUS_SUCCEEDED
    assert await complete(workers, leased, logs=final, progress=100) == done
    assert [s for _, s, _ in await read_all(logs, run.uuid)] == [1, 2, 3]
    # The attempt's stored end moved too: a follower from the start ends after seq 3.
    assert [s for _, s in await follow(logs, run.uuid)] == [1, 2, 3]
    finished = (await runs.GetRun(rpb.GetRunRequest(run=run.uuid))).run
    assert finished.progress == 100 and finished.attempts[0].status == run_pb2.RUN_STATUS_SUCCEEDED
