"""An attempt's encoded log entries waiting to be shipped: in memory up to a bound, then
spilled to a file, always in order.

The job's output must never wait for the server, and nothing below the per-attempt caps may
be dropped, so :class:`LogSpool` never refuses an entry. It holds entries already encoded
in their wire form (see :mod:`batchyard.worker.shipping.wire`), grouped in *segments*: runs of
consecutive entries that each fill at most one AppendLogs message (``segment_entries``
entries, ``segment_bytes`` bytes). The open segment takes new entries; a full one is closed
and queued.

Memory is bounded by bytes (``max_memory_bytes``, 16 MiB by default; encoded entries cost
their wire size plus ~30 bytes of overhead per segment, nothing per line). A segment closed
past the bound is *spilled*: written to an unnamed temporary file (``O_TMPFILE``: it
disappears with its descriptor, even if the worker is killed) in the worker's state
directory, and only a small reference stays in the queue. The queue keeps every segment in
order wherever its bytes are, and the file is emptied whenever no spilled segment is left.
The per-attempt output caps bound the whole spool, memory and file together.

Spilling costs one ``pwrite`` of a closed segment (at most ~1 MB, into the page cache) on
the event loop, reading back one ``pread``: no per-line work. If the file cannot be written
(disk full), a segment simply stays in memory — order and
content are kept, the bound is exceeded — and the failure is logged once.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import deque
from pathlib import Path
from typing import NamedTuple

import structlog

_log = structlog.get_logger(__name__)

DEFAULT_MAX_MEMORY_BYTES = 16 * 1024 * 1024
DEFAULT_SEGMENT_ENTRIES = 1000
DEFAULT_SEGMENT_BYTES = 1_000_000


class Segment(NamedTuple):
    """The encoded entries ``first_seq`` .. ``last_seq`` (consecutive)."""

    first_seq: int
    last_seq: int
    data: bytes

    @property
    def entries(self) -> int:
        return self.last_seq - self.first_seq + 1


class _Spilled(NamedTuple):
    """A segment whose bytes are in the spill file."""

    first_seq: int
    last_seq: int
    offset: int
    length: int

    @property
    def entries(self) -> int:
        return self.last_seq - self.first_seq + 1


class LogSpool:
    """A FIFO of encoded entries in segments that never refuses one."""

    def __init__(
        self,
        spill_dir: Path | None,
        *,
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
        segment_entries: int = DEFAULT_SEGMENT_ENTRIES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        self._spill_dir = spill_dir
        self._max_memory = max_memory_bytes
        self._segment_entries = segment_entries
        self._segment_bytes = segment_bytes
        self._queue: deque[Segment | _Spilled] = deque()
        self._open = bytearray()
        self._open_first = 0
        self._open_count = 0
        self._entries = 0  # pending entries, open segment included
        self._memory_bytes = 0  # closed segments held in memory
        self._fd: int | None = None
        self._file_end = 0
        self._file_segments = 0
        self._spill_failed = False
        self.spilled_segments = 0
        """How many segments went through the spill file (statistics, tests)."""

    def __len__(self) -> int:
        """The number of entries pending."""
        return self._entries

    @property
    def memory_bytes(self) -> int:
        """Bytes of entries held in memory (closed segments and the open one)."""
        return self._memory_bytes + len(self._open)

    def append(self, seq: int, entry: bytes) -> None:
        """Adds one encoded entry; ``seq`` must follow the previous entry's."""
        if self._open_count:
            if (
                self._open_count >= self._segment_entries
                or len(self._open) + len(entry) > self._segment_bytes
            ):
                self._close_open()
                self._open_first = seq
        else:
            self._open_first = seq
        self._open += entry
        self._open_count += 1
        self._entries += 1

    def take(self, max_entries: int, max_bytes: int) -> list[Segment]:
        """Removes and returns the oldest segments (the open one too, once it is the
        oldest): whole segments, within ``max_entries`` and ``max_bytes`` unless a single
        segment is larger, and at least one when anything is pending."""
        taken: list[Segment] = []
        entries = bytes_ = 0
        while True:
            head: Segment | _Spilled | None
            if self._queue:
                head = self._queue[0]
                count = head.entries
                size = head.length if isinstance(head, _Spilled) else len(head.data)
            elif self._open_count:
                head = None
                count = self._open_count
                size = len(self._open)
            else:
                break
            if taken and (entries + count > max_entries or bytes_ + size > max_bytes):
                break
            segment = self._pop() if head is not None else self._take_open()
            taken.append(segment)
            entries += segment.entries
            bytes_ += len(segment.data)
        return taken

    def take_single(self) -> Segment | None:
        """Everything pending, when it is one segment (one message); else None and nothing
        is taken."""
        if self._open_count and not self._queue:
            return self._take_open()
        if len(self._queue) == 1 and not self._open_count and isinstance(self._queue[0], Segment):
            return self._pop()
        return None

    def close(self) -> None:
        """Drops everything and closes the spill file (which then disappears)."""
        self._queue.clear()
        self._open = bytearray()
        self._open_count = 0
        self._entries = 0
        self._memory_bytes = 0
        self._file_segments = 0
        self._file_end = 0
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------------ internals

    def _close_open(self) -> None:
        data = bytes(self._open)
        self._open = bytearray()
        first, last = self._open_first, self._open_first + self._open_count - 1
        self._open_count = 0
        if self._memory_bytes + len(data) > self._max_memory and self._spill(first, last, data):
            return
        self._queue.append(Segment(first, last, data))
        self._memory_bytes += len(data)

    def _take_open(self) -> Segment:
        last = self._open_first + self._open_count - 1
        segment = Segment(self._open_first, last, bytes(self._open))
        self._open = bytearray()
        self._open_count = 0
        self._entries -= segment.entries
        return segment

    def _pop(self) -> Segment:
        item = self._queue.popleft()
        self._entries -= item.entries
        if isinstance(item, Segment):
            self._memory_bytes -= len(item.data)
            return item
        data = self._read(item)
        self._file_segments -= 1
        if not self._file_segments:
            self._empty_file()
        return Segment(item.first_seq, item.last_seq, data)

    def _spill(self, first: int, last: int, data: bytes) -> bool:
        """Writes a segment to the spill file; False if it cannot (it then stays in memory)."""
        if self._spill_dir is None or self._spill_failed:
            return False
        try:
            if self._fd is None:
                self._spill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=self._spill_dir, prefix="log-spool-") as file:
                    self._fd = os.dup(file.fileno())
            written = 0
            view = memoryview(data)
            while written < len(data):
                written += os.pwrite(self._fd, view[written:], self._file_end + written)
        except OSError as exc:
            self._spill_failed = True
            _log.warning("log_spool_unavailable", error=str(exc), kept="in memory")
            return False
        self._queue.append(_Spilled(first, last, self._file_end, len(data)))
        self._file_end += len(data)
        self._file_segments += 1
        self.spilled_segments += 1
        return True

    def _read(self, item: _Spilled) -> bytes:
        assert self._fd is not None
        parts: list[bytes] = []
        done = 0
        while done < item.length:
            part = os.pread(self._fd, item.length - done, item.offset + done)
            if not part:
                raise OSError(f"the log spool file ended early at {item.offset + done}")
            parts.append(part)
            done += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _empty_file(self) -> None:
        """No spilled segment is left: the file starts over (and gives its space back)."""
        self._file_end = 0
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError as exc:
                _log.warning("log_spool_truncate_failed", error=str(exc))
