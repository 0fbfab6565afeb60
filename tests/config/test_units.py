"""The size and duration grammar every process shares."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchyard.config import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4194304", 4194304),
        ("16KiB", 16 * 1024),
        ("16kib", 16 * 1024),
        ("64kB", 64_000),
        ("1.5MiB", 1572864),
        ("1GiB", 1024**3),
        ("2GB", 2 * 1000**3),
        ("1_000", 1000),
        (" 8 MiB ", 8 * 1024**2),
        ("1TiB", 1024**4),
        ("0", 0),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "1XB", "-1", "1.5B", "MiB", "1 2"])
def test_bad_sizes_say_what_and_give_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"(not a size|not a whole number of bytes).*e\.g\."):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("2.5", 2.5),
        ("90s", 90.0),
        ("600s", 600.0),
        ("5m", 300.0),
        ("1.5m", 90.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("2d", 172800.0),
        ("-5s", -5.0),
        ("1H", 3600.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5 minutes", "1h 30m", "5x", "inf", "nan", "--5s"])
def test_bad_durations_say_what_and_give_examples(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration: .*e\.g\. 90, 90s"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=2**50))
def test_a_formatted_size_reads_back(value: int) -> None:
    assert parse_size(format_size(value)) == value


@given(st.integers(min_value=0, max_value=10**8))
def test_a_formatted_whole_duration_reads_back(value: int) -> None:
    assert parse_duration(format_duration(value)) == value


@given(st.floats(min_value=0, max_value=10**6, allow_nan=False))
def test_a_formatted_duration_reads_back_closely(value: float) -> None:
    assert parse_duration(format_duration(value)) == pytest.approx(value, rel=1e-6, abs=1e-9)
