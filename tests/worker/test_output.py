"""Records, levels, progress and the per-attempt output cap (no processes involved)."""

from __future__ import annotations

import pytest

from batchyard.worker.output import Level, OutputCollector, Stream, line_level, parse_progress
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


def test_output_over_the_cap_is_discarded_with_a_notice_but_progress_still_counts() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, max_output_bytes=10)
    collector.feed(Stream.STDOUT, b"12345\n67890\nover\n::progress 90\nmore\n")
    collector.close()
    assert sink.lines(Stream.STDOUT) == ["12345", "67890"]
    notices = sink.system()
    assert "output limit of 10 bytes per attempt reached" in notices[0]
    assert "discarded 21 bytes of output" in notices[1]
    assert collector.progress == 90
