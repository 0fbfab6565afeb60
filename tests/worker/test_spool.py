"""The log spool: FIFO order, segments within their bounds, the memory bound, spilling to a
file and back, nothing lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchyard.worker.shipping.spool import LogSpool, Segment


def entry(seq: int, size: int = 10) -> bytes:
    """A stand-in for an encoded entry: any bytes will do, the spool does not parse them."""
    head = f"<{seq}>".encode()
    return head + b"." * max(size - len(head), 0)


def fill(spool: LogSpool, first: int, last: int, size: int = 10) -> list[bytes]:
    items = [entry(seq, size) for seq in range(first, last + 1)]
    for seq, item in zip(range(first, last + 1), items, strict=True):
        spool.append(seq, item)
    return items


def drain(spool: LogSpool, max_entries: int = 50, max_bytes: int = 1 << 30) -> list[Segment]:
    out: list[Segment] = []
    while len(spool):
        taken = spool.take(max_entries, max_bytes)
        assert taken, "take() returned nothing although entries were pending"
        out += taken
    return out


def check(segments: list[Segment], items: list[bytes], first: int = 1) -> None:
    """The segments hold exactly ``items``, consecutive from ``first``."""
    expected_first = first
    for segment in segments:
        assert segment.first_seq == expected_first
        assert segment.last_seq >= segment.first_seq
        expected_first = segment.last_seq + 1
    assert b"".join(s.data for s in segments) == b"".join(items)
    assert expected_first == first + len(items)


def test_entries_come_out_in_order_in_bounded_segments(tmp_path: Path) -> None:
    spool = LogSpool(tmp_path, segment_entries=100, segment_bytes=550)
    items = fill(spool, 1, 1000)
    assert len(spool) == 1000
    segments = drain(spool)
    check(segments, items)
    assert all(s.entries <= 55 and len(s.data) <= 550 for s in segments)
    assert len(spool) == 0
    assert spool.take(10, 1 << 20) == []
    assert spool.spilled_segments == 0


def test_the_open_segment_is_taken_when_it_is_the_oldest(tmp_path: Path) -> None:
    spool = LogSpool(tmp_path, segment_entries=100)
    items = fill(spool, 1, 3)
    (segment,) = spool.take(1000, 1 << 20)
    check([segment], items)
    more = fill(spool, 4, 5)
    check(spool.take(1000, 1 << 20), more, first=4)


def test_take_returns_whole_segments_within_the_bounds_but_at_least_one(tmp_path: Path) -> None:
    spool = LogSpool(tmp_path, segment_entries=10)
    fill(spool, 1, 95)
    first = spool.take(25, 1 << 20)  # two segments of 10 fit, a third would not
    assert [s.entries for s in first] == [10, 10]
    assert [s.entries for s in spool.take(1, 1)] == [10]  # over the bounds alone: still one
    assert sum(s.entries for s in drain(spool)) == 65


def test_an_entry_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    spool = LogSpool(tmp_path, segment_bytes=100)
    items = [entry(1), entry(2, 500), entry(3)]
    for seq, item in enumerate(items, 1):
        spool.append(seq, item)
    segments = drain(spool)
    assert [(s.first_seq, s.last_seq) for s in segments] == [(1, 1), (2, 2), (3, 3)]
    check(segments, items)


def test_spills_past_the_memory_bound_and_keeps_order(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool = LogSpool(spool_dir, max_memory_bytes=5000, segment_entries=20)
    items = fill(spool, 1, 5000, size=37)
    assert spool.spilled_segments > 200
    assert spool.memory_bytes <= 5000 + 20 * 37
    # The spill file has no name: nothing is left behind, even after kill -9.
    assert list(spool_dir.iterdir()) == []
    out = spool.take(200, 1 << 20)
    items += fill(spool, 5001, 8000, size=37)  # newer entries queue behind the spilled ones
    out += drain(spool, max_entries=333)
    check(out, items)
    # Emptied: memory only again, until the bound is reached once more.
    before = spool.spilled_segments
    fill(spool, 8001, 8010)
    assert spool.spilled_segments == before


def test_without_a_spill_directory_everything_stays_in_memory() -> None:
    spool = LogSpool(None, max_memory_bytes=100, segment_entries=5)
    items = fill(spool, 1, 200)
    assert spool.spilled_segments == 0
    check(drain(spool), items)


def test_a_failing_spill_file_keeps_segments_in_memory_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = LogSpool(tmp_path, max_memory_bytes=1000, segment_entries=10)
    items = fill(spool, 1, 300)
    assert spool.spilled_segments > 0

    def disk_full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", disk_full)
    items += fill(spool, 301, 600)
    check(drain(spool, max_entries=25), items)


def test_an_unusable_spill_directory_keeps_segments_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    spool = LogSpool(blocker / "spool", max_memory_bytes=100, segment_entries=3)
    items = fill(spool, 1, 100)
    assert spool.spilled_segments == 0
    check(drain(spool), items)


def test_close_drops_everything(tmp_path: Path) -> None:
    spool = LogSpool(tmp_path, max_memory_bytes=50, segment_entries=2)
    fill(spool, 1, 100)
    spool.close()
    assert len(spool) == 0
    assert spool.take(10, 1 << 20) == []


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 60), st.integers(1, 40), st.integers(1, 3000)), max_size=40
    ),
    memory=st.integers(0, 2000),
    segment_entries=st.integers(1, 12),
)
def test_any_interleaving_of_appends_and_takes_is_a_fifo(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[int, int, int]],
    memory: int,
    segment_entries: int,
) -> None:
    spool = LogSpool(
        tmp_path_factory.mktemp("spool"),
        max_memory_bytes=memory,
        segment_entries=segment_entries,
        segment_bytes=400,
    )
    written: list[bytes] = []
    read: list[Segment] = []
    for appends, max_entries, max_bytes in steps:
        first = len(written) + 1
        written += fill(spool, first, first + appends - 1, size=(first * 37) % 90 + 5)
        taken = spool.take(max_entries, max_bytes)
        assert len(taken) == 1 or sum(s.entries for s in taken) <= max_entries
        read += taken
        assert len(spool) == len(written) - sum(s.entries for s in read)
    read += drain(spool)
    check(read, written)
    spool.close()
