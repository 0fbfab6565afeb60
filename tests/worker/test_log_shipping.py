"""The log shipper against an in-memory AppendLogs: batches, acks, resends, faults, spill."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2

from batchyard.worker.output.collector import Level, LogRecord, Stream
from batchyard.worker.output.lines import truncation_marker
from batchyard.worker.server_api import Lease
from batchyard.worker.shipping.shipper import LogShipper, ShippingOptions
from tests.worker.jobs import wait_for
from tests.worker.log_server import LEVELS, STREAMS, T0, FakeLogServer, Fault, records

LEASE = Lease("7b3a1d52-0d9e-4a43-9c55-1d1e33b6f001", 2, "0c4f7c0e-5f55-4a7e-9d9a-0e2f5b7b1c11")
FAST = ShippingOptions(flush_interval=0.005, backoff_initial=0.001, backoff_maximum=0.01)


def as_stored(record: LogRecord) -> tuple[int, int, int, int, str, int, int]:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(record.time)
    return (
        record.seq,
        STREAMS[record.stream],
        LEVELS[record.level],
        0,
        record.message,
        stamp.seconds,
        stamp.nanos,
    )


def stored(server: FakeLogServer) -> list[tuple[int, int, int, int, str, int, int]]:
    return [
        (e.seq, e.stream, e.level, e.attempt, e.message, e.time.seconds, e.time.nanos)
        for e in server.stored
    ]


async def emit_all(shipper: LogShipper, items: list[LogRecord], per_chunk: int = 250) -> None:
    """Emits like the output collector does: a chunk's lines at once, then the loop runs."""
    for start in range(0, len(items), per_chunk):
        for record in items[start : start + per_chunk]:
            shipper.emit(record)
        await asyncio.sleep(0)


async def test_every_record_arrives_once_in_order_in_bounded_messages() -> None:
    server = FakeLogServer()
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    items = records(4000)
    items += records(60, start=4001, text="é{seq}" + "ü" * 16_000)  # ~32 KB each
    items += records(40, start=4061, text="")
    await emit_all(shipper, items)
    shipper.close()
    assert await shipper.wait_shipped()
    assert stored(server) == [as_stored(r) for r in items]
    assert server.violations == []
    assert server.fence == (LEASE.run, LEASE.attempt, LEASE.lease_id)
    assert shipper.acked_seq == shipper.last_seq == 4100
    await shipper.aclose()


async def test_a_call_carries_many_messages_and_the_spool_drains_into_few_calls() -> None:
    server = FakeLogServer()
    shipper = LogShipper(LEASE, server.send, FAST)
    for record in records(12_345):  # all pending before the shipper starts
        shipper.emit(record)
    shipper.close()
    shipper.start()
    assert await shipper.wait_shipped()
    assert len(server.stored) == 12_345
    assert server.calls == 1  # 13 messages of <= 1000 entries in one call
    assert server.violations == []


async def test_resends_after_broken_streams_and_lost_answers_double_nothing() -> None:
    server = FakeLogServer(
        faults=[
            Fault(after_messages=1),  # broken after the first message was stored
            Fault(lose_ack=True),  # all stored, the answer lost
            Fault(code=grpc.StatusCode.DEADLINE_EXCEEDED),
            Fault(code=grpc.StatusCode.RESOURCE_EXHAUSTED, after_messages=2),
            Fault(code=grpc.StatusCode.INTERNAL, lose_ack=True),
        ]
    )
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    items = records(6000)
    await emit_all(shipper, items, per_chunk=1500)
    shipper.close()
    assert await shipper.wait_shipped()
    assert not server.faults, "every fault was exercised"
    assert stored(server) == [as_stored(r) for r in items]
    assert server.received > len(items)  # entries were resent, and stored once
    assert server.violations == []


async def test_a_server_down_for_long_spills_then_everything_arrives(tmp_path: Path) -> None:
    server = FakeLogServer(down=True)
    options = ShippingOptions(
        spool_dir=tmp_path / "spool",
        flush_interval=0.001,
        max_memory_bytes=20_000,
        backoff_initial=0.001,
        backoff_maximum=0.005,
    )
    shipper = LogShipper(LEASE, server.send, options)
    items = records(20_000)
    await emit_all(shipper, items[:15_000], per_chunk=1000)
    assert shipper.spool.spilled_segments >= 14  # 1000 entries each, ~27 KB
    assert shipper.spool.memory_bytes < 20_000 + 30_000  # the bound, and the open segment
    shipper.start()
    await emit_all(shipper, items[15_000:], per_chunk=1000)
    await wait_for(lambda: server.calls >= 3, "a few refused calls")
    server.down = False
    shipper.close()
    assert await shipper.wait_shipped()
    assert stored(server) == [as_stored(r) for r in items]
    assert server.violations == []
    assert list((tmp_path / "spool").iterdir()) == []


async def test_lines_are_shipped_while_the_job_runs_in_one_batch() -> None:
    server = FakeLogServer()
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    await emit_all(shipper, records(3))
    await wait_for(lambda: len(server.stored) == 3, "live lines to be shipped")
    assert server.calls == 1
    await emit_all(shipper, records(2, start=4))
    await wait_for(lambda: len(server.stored) == 5, "the next lines")
    shipper.close()
    assert await shipper.wait_shipped()
    assert server.calls == 2
    await shipper.aclose()


async def test_a_quiet_attempt_costs_no_call() -> None:
    server = FakeLogServer()
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    await asyncio.sleep(0.05)
    shipper.close()
    assert await shipper.wait_shipped()
    assert server.calls == 0


async def test_lease_lost_stops_shipping_and_drops_what_is_pending() -> None:
    server = FakeLogServer(lease_lost=True)
    lost: list[bool] = []
    shipper = LogShipper(LEASE, server.send, FAST, on_lease_lost=lambda: lost.append(True))
    shipper.start()
    await emit_all(shipper, records(10))
    await wait_for(lambda: bool(lost), "the lease loss")
    await emit_all(shipper, records(10, start=11))
    shipper.close()
    assert not await shipper.wait_shipped()
    assert shipper.lease_lost
    assert lost == [True]
    assert server.calls == 1
    assert len(shipper.spool) == 0
    assert server.stored == []


async def test_a_server_without_append_logs_is_given_up_at_once() -> None:
    server = FakeLogServer(refuse=grpc.StatusCode.UNIMPLEMENTED)
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    await emit_all(shipper, records(10))
    shipper.close()
    assert not await shipper.wait_shipped()
    assert not shipper.lease_lost
    assert server.calls == 1


async def test_repeated_internal_errors_are_given_up_after_a_few_tries() -> None:
    server = FakeLogServer(refuse=grpc.StatusCode.INTERNAL)
    options = ShippingOptions(
        flush_interval=0, backoff_initial=0.001, backoff_maximum=0.001, max_odd_failures=4
    )
    shipper = LogShipper(LEASE, server.send, options)
    shipper.start()
    await emit_all(shipper, records(10))
    shipper.close()
    assert not await shipper.wait_shipped()
    assert server.calls == 4


async def test_unavailable_is_retried_for_as_long_as_it_lasts() -> None:
    server = FakeLogServer(down=True)
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    await emit_all(shipper, records(10))
    shipper.close()
    await wait_for(lambda: server.calls >= 20, "many retries")
    server.down = False
    assert await shipper.wait_shipped()
    assert len(server.stored) == 10


async def test_a_line_over_the_servers_limit_is_cut_not_refused() -> None:
    server = FakeLogServer()
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    huge = LogRecord(1, T0, Stream.SYSTEM, Level.INFO, "w" * 200_000)
    shipper.emit(huge)
    shipper.close()
    assert await shipper.wait_shipped()
    (entry,) = server.stored
    assert len(entry.message) <= 64 * 1024
    assert entry.message.startswith("w" * 60_000)
    assert entry.message.endswith(truncation_marker(200_000 - entry.message.count("w")))


async def test_abandon_cancels_the_shipping_task() -> None:
    server = FakeLogServer(down=True)
    shipper = LogShipper(LEASE, server.send, FAST)
    shipper.start()
    await emit_all(shipper, records(10))
    shipper.close()
    await wait_for(lambda: server.calls >= 2, "retries")
    shipper.abandon("lease lost")
    assert not await shipper.wait_shipped()
    await shipper.aclose()
    assert len(shipper.spool) == 0


async def test_the_workers_own_entries_wait_for_a_job_line_or_the_end() -> None:
    server = FakeLogServer()
    options = ShippingOptions(flush_interval=0.001, system_flush_interval=60)
    shipper = LogShipper(LEASE, server.send, options)
    shipper.start()
    shipper.emit(LogRecord(1, T0, Stream.SYSTEM, Level.INFO, "attempt 1 started"))
    shipper.emit(LogRecord(2, T0, Stream.SYSTEM, Level.INFO, "starting"))
    await asyncio.sleep(0.05)
    assert server.calls == 0  # no call for the worker's entries alone (yet)
    shipper.emit(LogRecord(3, T0, Stream.STDOUT, Level.INFO, "the job speaks"))
    await wait_for(lambda: len(server.stored) == 3, "the first job line, with what came before")
    assert server.calls == 1
    shipper.emit(LogRecord(4, T0, Stream.SYSTEM, Level.INFO, "attempt ended"))
    shipper.close()  # the end ships at once
    assert await shipper.wait_shipped()
    assert server.calls == 2
    assert [e.message for e in server.stored][-1] == "attempt ended"
