"""The hand-made wire encoding of AppendLogs messages equals the protobuf runtime's, byte for
byte, and parses back to the same entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from batchyard.v1 import worker_service_pb2
from batchyard.worker.output.collector import Level, Stream
from batchyard.worker.shipping.wire import encode_entry, request_header, time_field, varint
from tests.worker.log_server import LEVELS, STREAMS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def reference(
    run: str, attempt: int, lease: str, entries: list[tuple[int, datetime, Stream, Level, str]]
) -> bytes:
    request = worker_service_pb2.AppendLogsRequest(run=run, attempt=attempt, lease_id=lease)
    for seq, moment, stream, level, message in entries:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(moment)
        request.entries.add(
            seq=seq, time=stamp, stream=STREAMS[stream], level=LEVELS[level], message=message
        )
    return request.SerializeToString()


def ours(
    run: str, attempt: int, lease: str, entries: list[tuple[int, datetime, Stream, Level, str]]
) -> bytes:
    return request_header(run, attempt, lease) + b"".join(
        encode_entry(seq, time_field(moment), stream, level, message)
        for seq, moment, stream, level, message in entries
    )


@pytest.mark.parametrize(
    "value", [0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**31, 2**63 - 1]
)
def test_varint(value: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=value)
    assert stamp.SerializeToString() == (b"\x08" + varint(value) if value else b"")


def test_negative_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        varint(-1)


def test_a_typical_message() -> None:
    moment = datetime(2026, 11, 21, 7, 0, 1, 250_000, tzinfo=UTC)
    entries = [
        (1, moment, Stream.SYSTEM, Level.INFO, "attempt 1 started"),
        (2, moment, Stream.STDOUT, Level.INFO, "hello"),
        (3, moment, Stream.STDERR, Level.WARNING, ""),
        (200, EPOCH + timedelta(seconds=1), Stream.STDOUT, Level.ERROR, "x" * 20_000),
        (2**40, EPOCH, Stream.STDOUT, Level.DEBUG, "épée \ufffd 💥"),
    ]
    run, lease = "7b3a1d52-0d9e-4a43-9c55-1d1e33b6f001", "0c4f7c0e-5f55-4a7e-9d9a-0e2f5b7b1c11"
    data = ours(run, 3, lease, entries)
    assert data == reference(run, 3, lease, entries)
    parsed = worker_service_pb2.AppendLogsRequest.FromString(data)
    assert parsed.run == run and parsed.attempt == 3 and parsed.lease_id == lease
    assert [e.message for e in parsed.entries] == [e[4] for e in entries]
    assert parsed.entries[0].time.ToDatetime(tzinfo=UTC) == moment


@given(
    entries=st.lists(
        st.tuples(
            st.integers(1, 2**62),
            st.datetimes(
                min_value=datetime(1970, 1, 1),
                max_value=datetime(2200, 1, 1),
                timezones=st.just(UTC),
            ),
            st.sampled_from(list(Stream)),
            st.sampled_from(list(Level)),
            st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300),
        ),
        max_size=20,
    ),
    run=st.text(max_size=40),
    attempt=st.integers(0, 2**31 - 1),
)
def test_any_entries_encode_exactly_as_the_protobuf_runtime_does(
    entries: list[tuple[int, datetime, Stream, Level, str]], run: str, attempt: int
) -> None:
    assert ours(run, attempt, "lease", entries) == reference(run, attempt, "lease", entries)
