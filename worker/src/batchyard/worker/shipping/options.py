"""The log shipper's options (:class:`ShippingOptions`), with the worker's two flags for
them: how long a line may wait, and how much unsent log stays in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from batchyard.config import Flag, Values, duration, size
from batchyard.worker.shipping.spool import DEFAULT_MAX_MEMORY_BYTES

DEFAULT_FLUSH_INTERVAL = 0.03
SYSTEM_FLUSH_INTERVAL = 0.2
MESSAGE_ENTRIES = 1000
MESSAGE_BYTES = 1_000_000
"""Serialized bytes per AppendLogsRequest; the server refuses more than 1 MiB."""
CALL_BYTES = 4 * 1024 * 1024
CALL_ENTRIES = 16_000
CALL_TIMEOUT = 15.0
MAX_ENTRY_CHARS = 64 * 1024
"""The server refuses a longer message (the worker's line cap keeps lines well below)."""

MAX_ODD_FAILURES = 8
MAX_FLUSH_INTERVAL = 5.0

FLUSH_INTERVAL = Flag(
    "log-flush-interval",
    duration(0, MAX_FLUSH_INTERVAL),
    "how long a log line may wait in the worker before it is sent",
    default=DEFAULT_FLUSH_INTERVAL,
)
SPOOL_MEMORY = Flag(
    "log-spool-memory",
    size(1),
    "unsent log kept in memory per attempt before spilling to the state directory",
    default=DEFAULT_MAX_MEMORY_BYTES,
)
FLAGS = (FLUSH_INTERVAL, SPOOL_MEMORY)


@dataclass(frozen=True)
class ShippingOptions:
    """The worker's settings for shipping logs (the same for every attempt)."""

    spool_dir: Path | None = None
    """Where spill files go (the worker's state directory); None: never spill."""
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    system_flush_interval: float = SYSTEM_FLUSH_INTERVAL
    """The longest the worker's own entries wait while no job line is pending."""
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
    message_entries: int = MESSAGE_ENTRIES
    message_bytes: int = MESSAGE_BYTES
    call_entries: int = CALL_ENTRIES
    call_bytes: int = CALL_BYTES
    call_timeout: float = CALL_TIMEOUT
    max_odd_failures: int = MAX_ODD_FAILURES
    backoff_initial: float = 0.1
    backoff_maximum: float = 5.0

    @classmethod
    def from_values(cls, values: Values, *, state_dir: Path) -> ShippingOptions:
        """The options the flags give; spill files go to ``<state_dir>/spool``."""
        return cls(
            spool_dir=state_dir / "spool",
            flush_interval=values[FLUSH_INTERVAL],
            max_memory_bytes=values[SPOOL_MEMORY],
        )
