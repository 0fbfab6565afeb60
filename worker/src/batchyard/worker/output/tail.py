"""The attempt's most recent records, kept in memory (bounded) next to the log shipper.

Every attempt has one (the execution fans records out to it and to the shipper): a failed
attempt's message quotes its last stderr lines from here, whatever happens to shipping.
"""

from __future__ import annotations

from collections import deque

from batchyard.worker.output.collector import LogRecord, Stream

DEFAULT_KEEP = 200
QUOTED_LINES = 3
QUOTED_CHARS = 600


class TailSink:
    """Keeps the last ``keep`` records."""

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self.records: deque[LogRecord] = deque(maxlen=keep)

    def emit(self, record: LogRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        return None

    def last_lines(self, stream: Stream, count: int) -> list[str]:
        """The last ``count`` messages of ``stream``, oldest first."""
        found = [r.message for r in reversed(self.records) if r.stream is stream]
        return list(reversed(found[:count]))

    def stderr_summary(self) -> str:
        """The last stderr lines as one short text ("" when there are none)."""
        text = " | ".join(self.last_lines(Stream.STDERR, QUOTED_LINES))
        return text if len(text) <= QUOTED_CHARS else "…" + text[-QUOTED_CHARS:]
