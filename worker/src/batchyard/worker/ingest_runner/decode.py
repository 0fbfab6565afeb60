"""A file's bytes as rows, in a thread of its own, with bounded memory.

The thread reads the object's chunks from the event loop as it needs them (nothing is
staged on disk or held whole), decompresses them (gzip or zstd, by the name or the first
bytes), decodes UTF-8 (a byte order mark at the start is skipped), and parses CSV
(:mod:`csv`: quoted fields with delimiters, quotes and line breaks; LF or CRLF) or NDJSON
(one object a line; blank lines are skipped). The loop gets batches of rows, at most
:data:`QUEUED_BATCHES` ahead of what it has taken, each row with the line it starts on.

A row that cannot be parsed (bad quoting, a line that is no JSON object) is a bad row;
bytes that cannot be decoded or decompressed make the whole file bad (:class:`FileError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import io
import json
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import zstandard

from batchyard.v1 import ingest_pb2

BATCH_ROWS = 5000
CHUNK_BYTES = 1024 * 1024
QUEUED_BATCHES = 3
_WAIT = 0.2
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_NAMES = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
csv.field_size_limit(64 * 1024 * 1024)


class FileError(Exception):
    """The file cannot be read as a whole (the message says where and why)."""


class Stopped(Exception):
    """The reader was stopped (its file is being abandoned)."""


@dataclass
class Batch:
    rows: list[tuple[int, Any]] = field(default_factory=list)
    """(line, CSV fields or JSON object) for good rows."""
    bad: list[tuple[int, str]] = field(default_factory=list)
    """(line, message) for rows that could not be parsed."""


def compression_of(name: str, head: bytes, chosen: int) -> str:
    """ "gzip", "zstd" or "none": as chosen, else by the name's suffix, else the magic."""
    if chosen == ingest_pb2.INGEST_COMPRESSION_NONE:
        return "none"
    if chosen == ingest_pb2.INGEST_COMPRESSION_GZIP:
        return "gzip"
    if chosen == ingest_pb2.INGEST_COMPRESSION_ZSTD:
        return "zstd"
    lowered = name.lower()
    for suffix, kind in _NAMES.items():
        if lowered.endswith(suffix):
            return kind
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return "none"


class _LoopReader(io.RawIOBase):
    """A blocking reader (for the thread) of chunks that an async iterator yields on the loop."""

    def __init__(
        self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop, stop: threading.Event
    ) -> None:
        self._chunks = chunks
        self._loop = loop
        self._stop = stop
        self._rest = b""
        self._done = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest and not self._done:
            chunk = self._next()
            if chunk is None:
                self._done = True
            else:
                self._rest = chunk
                self.bytes_read += len(chunk)
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size

    def _next(self) -> bytes | None:
        future = asyncio.run_coroutine_threadsafe(anext(self._chunks, None), self._loop)
        while True:
            if self._stop.is_set():
                future.cancel()
                raise Stopped
            try:
                return future.result(_WAIT)
            except TimeoutError:
                continue


def open_text(raw: io.RawIOBase, name: str, chosen: int) -> tuple[io.TextIOWrapper, str]:
    """The decompressed, decoded text of ``raw`` and the compression found."""
    stream, kind = open_binary(raw, name, chosen)
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline=""), kind


def open_binary(raw: io.RawIOBase, name: str, chosen: int) -> tuple[Any, str]:
    """The decompressed bytes of ``raw`` and the compression found."""
    buffered = io.BufferedReader(raw, 1024 * 1024)
    kind = compression_of(name, buffered.peek(4)[:4], chosen)
    stream: Any = buffered
    if kind == "gzip":
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")
    elif kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        stream = io.BufferedReader(reader, 1024 * 1024)
    return stream, kind


def csv_rows(text: io.TextIOWrapper, options: ingest_pb2.CsvFormat) -> Iterator[tuple[int, Any]]:
    """(line, fields) per record, (line, BadRow message) for a record that cannot be parsed."""
    reader = csv.reader(
        text,
        delimiter=options.delimiter or ",",
        quotechar=options.quote or '"',
        strict=True,
    )
    line = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, BadRow(f"bad CSV: {exc}")
        else:
            yield line, fields
        line = reader.line_num + 1


def ndjson_rows(text: io.TextIOWrapper) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield number, BadRow(f"bad JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield number, BadRow("the line is not a JSON object")
        else:
            yield number, value


@dataclass(frozen=True)
class BadRow:
    message: str


class FileReader:
    """Reads one file in a daemon thread; ``async for batch in reader.batches()``."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        name: str,
        form: ingest_pb2.IngestFormat,
        *,
        batch_rows: int = BATCH_ROWS,
        raw: bool = False,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._raw = _LoopReader(chunks, self._loop, self._stop)
        self._chunks = chunks
        self._name = name
        self._form = form
        self._batch_rows = batch_rows
        self._raw_bytes = raw
        """Yield the decompressed bytes in chunks, not rows."""
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._room = threading.Semaphore(QUEUED_BATCHES)
        self._thread = threading.Thread(target=self._work, name=f"ingest {name}", daemon=True)
        self.compression = ""
        self.header: list[str] | None = None

    @property
    def bytes_read(self) -> int:
        return self._raw.bytes_read

    def start(self) -> None:
        self._thread.start()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's decompressed bytes (a ``raw`` reader); raises FileError."""
        async for item in self._items():
            yield item

    async def batches(self) -> AsyncIterator[Batch]:
        """The file's batches; raises FileError."""
        async for item in self._items():
            yield item

    async def _items(self) -> AsyncIterator[Any]:
        while True:
            item = await self._queue.get()
            self._room.release()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        """Stops the thread (if still reading) and closes the object's stream."""
        self._stop.set()
        with contextlib.suppress(RuntimeError):  # still running in the thread's last call
            await self._chunks.aclose()  # type: ignore[attr-defined]

    def _work(self) -> None:
        try:
            if self._raw_bytes:
                self._work_bytes()
                return
            text, self.compression = open_text(self._raw, self._name, self._form.compression)
            rows = self._rows(text)
            batch = Batch()
            for line, row in rows:
                if isinstance(row, BadRow):
                    batch.bad.append((line, row.message))
                else:
                    batch.rows.append((line, row))
                if len(batch.rows) + len(batch.bad) >= self._batch_rows:
                    self._put(batch)
                    batch = Batch()
            self._put(batch)
            self._put(None)
        except Stopped:
            return
        except (UnicodeDecodeError, OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            self._fail(FileError(f"cannot read {self._name}: {_describe(exc)}"))
        except Exception as exc:  # the thread's boundary: the loop reports it
            self._fail(exc)

    def _work_bytes(self) -> None:
        stream, self.compression = open_binary(self._raw, self._name, self._form.compression)
        while (
            chunk := stream.read1(CHUNK_BYTES)
            if hasattr(stream, "read1")
            else stream.read(CHUNK_BYTES)
        ):
            self._put(chunk)
        self._put(None)

    def _rows(self, text: io.TextIOWrapper) -> Iterator[tuple[int, Any]]:
        if self._form.WhichOneof("kind") == "ndjson":
            return ndjson_rows(text)
        rows = csv_rows(text, self._form.csv)
        options = self._form.csv
        if not options.HasField("header") or options.header:
            for _line, first in rows:
                if isinstance(first, BadRow):
                    raise FileError(f"cannot read the CSV header of {self._name}: {first.message}")
                self.header = list(first)
                break
            else:
                self.header = []
        return rows

    def _put(self, item: Any) -> None:
        while not self._room.acquire(timeout=_WAIT):
            if self._stop.is_set():
                raise Stopped
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            raise Stopped from None

    def _fail(self, exc: BaseException) -> None:
        with contextlib.suppress(Stopped):
            self._put(exc)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start} of a decoded block)"
    return f"{type(exc).__name__}: {exc}"
