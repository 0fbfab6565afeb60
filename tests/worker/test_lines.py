"""Splitting raw output into lines: breaks, caps, decoding (no processes involved)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from batchyard.worker.output.lines import LineSplitter, truncation_marker


def split(*chunks: bytes, max_line_bytes: int = 1024) -> list[str]:
    splitter = LineSplitter(max_line_bytes)
    lines = [line.text for chunk in chunks for line in splitter.feed(chunk)]
    last = splitter.flush()
    return lines + ([last.text] if last is not None else [])


def test_newline_crlf_and_lone_cr_all_end_a_line() -> None:
    assert split(b"a\nb\r\nc\rd\n") == ["a", "b", "c", "d"]


def test_crlf_split_across_chunks_is_one_break() -> None:
    assert split(b"a\r", b"\nb\n") == ["a", "b"]


def test_lone_cr_at_chunk_end_followed_by_text() -> None:
    assert split(b"10%\r", b"20%\r", b"30%\n") == ["10%", "20%", "30%"]


def test_empty_lines_are_kept() -> None:
    assert split(b"a\n\n\nb\n") == ["a", "", "", "b"]


def test_output_without_trailing_newline_is_flushed() -> None:
    assert split(b"first\nla", b"st") == ["first", "last"]


def test_no_output_gives_no_line() -> None:
    assert split(b"") == []
    assert split(b"a\n") == ["a"]


def test_long_line_is_cut_with_a_marker_counting_the_dropped_bytes() -> None:
    lines = split(b"x" * 100 + b"\nshort\n", max_line_bytes=10)
    assert lines == ["x" * 10 + truncation_marker(90), "short"]


def test_long_line_across_many_chunks_is_cut_once() -> None:
    lines = split(*([b"y" * 7] * 10), b"\nnext\n", max_line_bytes=16)
    assert lines == ["y" * 16 + truncation_marker(70 - 16), "next"]


def test_cut_never_splits_a_utf8_character() -> None:
    text = "é" * 10  # 2 bytes each
    lines = split(text.encode() + b"\n", max_line_bytes=5)
    assert lines == ["éé" + truncation_marker(16)]


def test_invalid_utf8_and_nul_become_replacement_characters() -> None:
    assert split(b"ok \xff\xfe end\n", b"a\x00b\n") == ["ok \ufffd\ufffd end", "a\ufffdb"]


def test_reported_size_is_the_bytes_kept() -> None:
    splitter = LineSplitter(4)
    (line,) = splitter.feed(b"abcdefgh\n")
    assert line.size == 4


@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_chunking_never_changes_the_lines(data: bytes, cuts: list[int]) -> None:
    positions = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *positions], [*positions, len(data)], strict=True)]
    assert split(*chunks) == split(data)
