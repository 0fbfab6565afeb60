"""What the runner says while it works: log lines, ``::progress N`` and ``::tasks {json}``.

``::tasks`` carries the run's task summary in the protobuf JSON form of
``batchyard.v1.TaskSummary``: the phase LIST (one task, running while the keys are
enumerated, with ``estimated`` true until it is done), then LOAD (one task per file:
pending, running, done — loaded now or before, by the ledger — or failed), the percentage
of the listed bytes that are done, and the latest errors (bad rows and bad files). A line
is printed when something changed, at most every :data:`INTERVAL` seconds, and once at
the end.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from dataclasses import dataclass, field

INTERVAL = 0.5
MAX_ERRORS = 20
MAX_MESSAGE = 300


def say(message: str) -> None:
    print(message, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Tracker:
    listed: int = 0
    listing: bool = True
    listing_failed: bool = False
    total_bytes: int = 0
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    done_bytes: int = 0
    running_bytes: dict[str, int] = field(default_factory=dict)
    errors: deque[dict[str, object]] = field(default_factory=lambda: deque(maxlen=MAX_ERRORS))
    error_count: int = 0
    _last: float = 0.0
    _said: str = ""

    def error(self, phase: str, task: str, line: int, message: str) -> None:
        self.error_count += 1
        entry: dict[str, object] = {
            "phase": phase,
            "task": task[:1024],
            "message": message[:MAX_MESSAGE],
        }
        if line:
            entry["line"] = str(line)
        self.errors.append(entry)

    def percent(self) -> int:
        if self.listing:
            return 0
        if not self.total_bytes:
            return 100 if not self.pending and not self.running else 0
        moved = self.done_bytes + sum(self.running_bytes.values())
        return min(100, moved * 100 // self.total_bytes)

    def summary(self) -> dict[str, object]:
        listing: dict[str, object] = {"name": "LIST"}
        listing["running" if self.listing else ("failed" if self.listing_failed else "done")] = "1"
        phases: list[dict[str, object]] = [listing]
        if not self.listing or self.listed:
            load: dict[str, object] = {"name": "LOAD"}
            for state in ("pending", "running", "done", "failed"):
                if getattr(self, state):
                    load[state] = str(getattr(self, state))
            phases.append(load)
        out: dict[str, object] = {"phases": phases, "percentComplete": self.percent()}
        if self.listing:
            out["estimated"] = True
        if self.errors:
            out["errors"] = list(self.errors)
            out["errorCount"] = str(self.error_count)
        return out

    def report(self, *, force: bool = False) -> None:
        """Prints the summary if it changed (and, unless ``force``, not too often)."""
        now = time.monotonic()
        if not force and now - self._last < INTERVAL:
            return
        text = json.dumps(self.summary(), separators=(",", ":"))
        if text == self._said:
            return
        self._last, self._said = now, text
        say(f"::tasks {text}")
        say(f"::progress {self.percent()}")
