"""Log entries encoded once, straight into the wire form of ``AppendLogsRequest``.

A job may print hundreds of thousands of lines a second, and building one protobuf object
per line, keeping it until it is acknowledged and spilling it to disk would cost more than
everything else the worker does with a line. So each record is encoded exactly once, when
the worker reads it, as one element of ``AppendLogsRequest.entries`` (field 4: tag, length,
then the ``LogEntry``); the spool keeps those bytes, spills them as they are, and a message
is the request's header (run, attempt, lease id) followed by a segment of entries — protobuf
messages may be concatenated field by field. gRPC then sends the bytes as they are.

The encoding is the canonical one (what ``SerializeToString`` produces: fields in number
order, zero values left out); the tests compare it with the protobuf runtime byte for byte.
Only non-negative integers occur (seq, attempt, seconds since 1970, nanos).
"""

from __future__ import annotations

from datetime import UTC, datetime

from batchyard.v1 import log_pb2
from batchyard.worker.output.collector import Level, Stream

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Varints by table, for the numbers every entry has (seq, lengths): 0 .. 2**21 - 1 without
# a loop. ~1.4 MB for the tables, built once.
_SMALL = [bytes((n,)) for n in range(128)]
_TWO_LAST = [bytes(((n & 0x7F) | 0x80, n >> 7)) for n in range(16384)]
_TWO_MORE = [bytes(((n & 0x7F) | 0x80, (n >> 7) | 0x80)) for n in range(16384)]

# Field tags: (number << 3) | wire type (0 varint, 2 length-delimited).
_REQUEST_RUN = b"\x0a"  # AppendLogsRequest.run = 1
_REQUEST_ATTEMPT = b"\x10"  # .attempt = 2
_REQUEST_LEASE = b"\x1a"  # .lease_id = 3
# .entries = 4 is b"\x22", inlined in encode_entry
_ENTRY_TIME = b"\x22"  # LogEntry.time = 4; .seq = 3 is b"\x18", .message = 7 b"\x3a"
_STREAM_TAG, _LEVEL_TAG = 0x28, 0x30  # .stream = 5, .level = 6
_SECONDS, _NANOS = b"\x08", b"\x10"  # Timestamp.seconds = 1, .nanos = 2

_STREAMS = {
    Stream.STDOUT: log_pb2.LOG_STREAM_STDOUT,
    Stream.STDERR: log_pb2.LOG_STREAM_STDERR,
    Stream.SYSTEM: log_pb2.LOG_STREAM_SYSTEM,
}
_LEVELS = {
    Level.DEBUG: log_pb2.LOG_LEVEL_DEBUG,
    Level.INFO: log_pb2.LOG_LEVEL_INFO,
    Level.WARNING: log_pb2.LOG_LEVEL_WARNING,
    Level.ERROR: log_pb2.LOG_LEVEL_ERROR,
}
# Stream and level fields together, one lookup per entry (enum values are < 128).
_STREAM_LEVEL = {
    stream: {
        level: bytes((_STREAM_TAG, stream_value, _LEVEL_TAG, level_value))
        for level, level_value in _LEVELS.items()
    }
    for stream, stream_value in _STREAMS.items()
}


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    if value < 16384:
        if value < 0:
            raise ValueError("negative values are not encoded here")
        return _SMALL[value] if value < 128 else _TWO_LAST[value]
    if value < 2097152:
        return _TWO_MORE[value & 0x3FFF] + _SMALL[value >> 14]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, data: bytes) -> bytes:
    return tag + varint(len(data)) + data


def request_header(run: str, attempt: int, lease_id: str) -> bytes:
    """``AppendLogsRequest`` without its entries: append encoded entries to make a message."""
    header = b""
    if run:
        header += _field(_REQUEST_RUN, run.encode())
    if attempt:
        header += _REQUEST_ATTEMPT + varint(attempt)
    if lease_id:
        header += _field(_REQUEST_LEASE, lease_id.encode())
    return header


def time_field(moment: datetime) -> bytes:
    """``LogEntry.time`` (tag included) for a timezone-aware datetime, exactly."""
    delta = moment - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    nanos = delta.microseconds * 1000
    stamp = (_SECONDS + varint(seconds) if seconds else b"") + (
        _NANOS + varint(nanos) if nanos else b""
    )
    return _field(_ENTRY_TIME, stamp)


def encode_entry(seq: int, time: bytes, stream: Stream, level: Level, message: str) -> bytes:
    """One element of ``AppendLogsRequest.entries``: tag, length, ``LogEntry``.

    ``time`` is :func:`time_field`'s result (records read together share it). Called for
    every line a job prints, hence the inlined varints.
    """
    data = message.encode()
    size = len(data)
    if size:
        body = b"\x18%b%b%b\x3a%b%b" % (
            _SMALL[seq] if seq < 128 else _TWO_LAST[seq] if seq < 16384 else varint(seq),
            time,
            _STREAM_LEVEL[stream][level],
            _SMALL[size] if size < 128 else varint(size),
            data,
        )
    else:  # proto3 leaves an empty string out
        body = b"\x18%b%b%b" % (varint(seq), time, _STREAM_LEVEL[stream][level])
    size = len(body)
    return b"\x22%b%b" % (_SMALL[size] if size < 128 else varint(size), body)
