"""An attempt's log as a JSON-lines file in its attempt directory.

One JSON object per record: ``{"seq", "time", "stream", "level", "message"}``. This is the
attempt's log until log shipping to the server exists; the format keeps everything a shipper
needs, so it can also be replayed from the file.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import IO

import structlog

from batchyard.worker.output import LogRecord

_log = structlog.get_logger(__name__)


def record_to_json(record: LogRecord) -> str:
    """One record as a JSON line (without the line break)."""
    return json.dumps(
        {
            "seq": record.seq,
            "time": record.time.isoformat(),
            "stream": record.stream.value,
            "level": record.level.value,
            "message": record.message,
        },
        ensure_ascii=False,
    )


class JsonLinesSink:
    """Appends records to a file; a write error is logged once and later records dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = path.open("a", encoding="utf-8", buffering=1 << 16)

    def emit(self, record: LogRecord) -> None:
        if self._file is None:
            return
        try:
            self._file.write(record_to_json(record) + "\n")
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self._file.close()
        except OSError as exc:
            self._fail(exc)
        self._file = None

    def _fail(self, exc: OSError) -> None:
        _log.warning("attempt_log_write_failed", path=str(self.path), error=str(exc))
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # already reported above
                file.close()


def read_records(path: Path) -> list[dict[str, object]]:
    """Reads a JSON-lines attempt log back (for tools and tests)."""
    with path.open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]
