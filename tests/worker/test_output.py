"""Records, levels, progress and the per-attempt output cap (no processes involved)."""

from __future__ import annotations

import pytest

from batchyard.worker.output.collector import (
    FanOutSink,
    Level,
    OutputCollector,
    Stream,
    line_level,
    parse_progress,
)
from tests.worker.jobs import MemorySink


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("::progress 0", 0),
        ("::progress 42", 42),
        ("::progress 100", 100),
        ("::progress 12.9", 12),
        ("::progress  7 ", 7),
        ("::progress 101", None),
        ("::progress -1", None),
        ("::progress abc", None),
        ("::progress", None),
        ("progress 5", None),
        ("say ::progress 5", None),
    ],
)
def test_progress_lines(line: str, value: int | None) -> None:
    assert parse_progress(line) == value


@pytest.mark.parametrize(
    ("stream", "line", "level"),
    [
        (Stream.STDOUT, "plain", Level.INFO),
        (Stream.STDERR, "plain", Level.WARNING),
        (Stream.STDOUT, '{"level": "error", "msg": "x"}', Level.ERROR),
        (Stream.STDERR, '{"level": "DEBUG"}', Level.DEBUG),
        (Stream.STDOUT, '{"level": "warn"}', Level.WARNING),
        (Stream.STDERR, '{"level": "info"}', Level.INFO),
        (Stream.STDOUT, '{"level": "nonsense"}', Level.INFO),
        (Stream.STDERR, '{"level": 40}', Level.WARNING),
        (Stream.STDOUT, "{not json}", Level.INFO),
        (Stream.STDOUT, "[1, 2]", Level.INFO),
    ],
)
def test_levels(stream: Stream, line: str, level: Level) -> None:
    assert line_level(stream, line) == level


def test_records_are_numbered_without_gaps_across_streams() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink)
    collector.system("starting")
    collector.feed(Stream.STDOUT, b"a\nb")
    collector.feed(Stream.STDERR, b"c\n")
    collector.close()
    assert [r.seq for r in sink.records] == [1, 2, 3, 4]
    assert [(r.stream, r.message) for r in sink.records] == [
        (Stream.SYSTEM, "starting"),
        (Stream.STDOUT, "a"),
        (Stream.STDERR, "c"),
        (Stream.STDOUT, "b"),
    ]
    assert sink.closed


def test_latest_progress_wins() -> None:
    collector = OutputCollector(MemorySink())
    assert collector.progress is None
    collector.feed(Stream.STDOUT, b"::progress 10\n::progress 60\nwork\n")
    assert collector.progress == 60


def test_bytes_over_the_cap_are_dropped_with_one_entry_at_the_end() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, max_output_bytes=10)
    collector.feed(Stream.STDOUT, b"12345\n67890\nover\n::progress 90\n")
    collector.feed(Stream.STDERR, b"more\nsmall\n")
    assert sink.system() == []  # nothing said while the job runs
    collector.close()
    assert sink.lines(Stream.STDOUT) == ["12345", "67890"]
    assert sink.lines(Stream.STDERR) == []  # "the rest" is dropped, even lines that would fit
    assert sink.system() == [
        "output limit reached: dropped 3 lines (13 bytes) of output over the per-attempt "
        "limits of 1000000 lines and 10 bytes"
    ]
    assert sink.records[-1].level is Level.WARNING
    assert collector.dropped == (3, 13)
    assert collector.progress == 90  # progress still counts past the cap
    assert [r.seq for r in sink.records] == [1, 2, 3]


def test_lines_over_the_cap_are_dropped_with_one_entry_at_the_end() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, max_output_lines=3)
    for i in range(10):
        collector.feed(Stream.STDOUT if i % 2 else Stream.STDERR, f"line {i}\n".encode())
    collector.feed(Stream.STDOUT, b"no newline at the end")
    collector.finish()
    collector.system("attempt ended: exited with code 0")
    collector.close()
    assert [r.message for r in sink.records] == [
        "line 0",
        "line 1",
        "line 2",
        "output limit reached: dropped 8 lines (63 bytes) of output over the per-attempt "
        "limits of 3 lines and 67108864 bytes",
        "attempt ended: exited with code 0",
    ]
    assert [r.seq for r in sink.records] == [1, 2, 3, 4, 5]


def test_no_cap_reached_means_no_entry() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, max_output_lines=2, max_output_bytes=2)
    collector.feed(Stream.STDOUT, b"a\nb\n")
    collector.close()
    assert sink.lines() == ["a", "b"]
    assert sink.system() == []


def test_progress_lines_are_kept_out_of_the_log_and_take_no_seq() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, max_output_lines=2)
    collector.feed(Stream.STDOUT, b"before\n::progress 10\n::progress 55.5 %\n")
    collector.feed(Stream.STDERR, b"::progress 60\n")
    collector.feed(Stream.STDOUT, b"::progress 150\n::progress soon\nafter\n")
    collector.close()
    assert collector.progress == 60
    # Malformed progress lines are ordinary output: stored (and counted against the caps).
    assert [(r.seq, r.message) for r in sink.records if r.stream is not Stream.SYSTEM] == [
        (1, "before"),
        (2, "::progress 150"),
    ]
    assert "dropped 2 lines" in sink.system()[0]


def test_fan_out_sink_hands_every_record_to_every_sink_and_closes_them() -> None:
    first, second = MemorySink(), MemorySink()
    collector = OutputCollector(FanOutSink(first, second))
    collector.system("hello")
    collector.feed(Stream.STDERR, b"x\n")
    collector.close()
    assert first.records == second.records
    assert [r.message for r in first.records] == ["hello", "x"]
    assert first.closed and second.closed


def test_nothing_is_emitted_after_close() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink)
    collector.feed(Stream.STDOUT, b"a\n")
    collector.close()
    collector.feed(Stream.STDOUT, b"b\n")
    collector.system("late")
    collector.close()
    assert [r.message for r in sink.records] == ["a"]
