"""Why a pending run is waiting: one true, specific answer (pure).

Computed at read time (GetRun, ListRuns, WatchRun) from what the database says now, so
the answer changes as soon as its cause does; nothing has to rewrite the pending runs
of a queue when the queue is paused or fills up. Precedence, first that holds wins:

1. waiting on dependencies (stored on the run by whoever holds it there),
2. waiting for a retry until a time still in the future,
3. its queue is paused,
4. its queue is at its concurrency limit,
5. otherwise in queue, with an approximate position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from batchyard.server.domain.runs import RunReason

POSITION_CAP = 1000
"""Positions are counted up to this many runs ahead (reported as "at least" beyond)."""


@dataclass(frozen=True)
class QueueFacts:
    """What holds a pending run, read from the database at one moment."""

    queue: str
    paused: bool
    concurrency_limit: int | None
    running: int
    ahead: int  # pending runs of the queue that are leased before this one (capped)


@dataclass(frozen=True)
class Waiting:
    reason: RunReason
    message: str
    position: int | None = None


def explain(
    reason: RunReason,
    message: str,
    next_attempt: datetime | None,
    now: datetime,
    facts: QueueFacts | None,
) -> Waiting:
    """The reason and message to show for a PENDING run stored with `reason`/`message`
    (`next_attempt`: when a retry may start; `facts`: None when not known)."""
    if reason == RunReason.WAITING_ON_DEPENDENCIES:
        return Waiting(reason, message)
    if reason == RunReason.WAITING_FOR_RETRY and next_attempt is not None and next_attempt > now:
        return Waiting(reason, message or f"waiting for retry until {next_attempt.isoformat()}")
    if facts is None:
        return Waiting(reason, message)
    if facts.paused:
        return Waiting(
            RunReason.QUEUE_PAUSED,
            f"queue {facts.queue!r} is paused; the run starts once it is resumed",
        )
    limit = facts.concurrency_limit
    if limit is not None and facts.running >= limit:
        return Waiting(
            RunReason.QUEUE_AT_LIMIT,
            f"queue {facts.queue!r} is at its concurrency limit "
            f"({facts.running} of {limit} running)",
        )
    return _in_queue(reason, message, facts)


def _in_queue(reason: RunReason, message: str, facts: QueueFacts) -> Waiting:
    shown = reason if reason == RunReason.RECENTLY_SUBMITTED else RunReason.IN_QUEUE
    ahead = (
        f"at least {POSITION_CAP} runs ahead"
        if facts.ahead >= POSITION_CAP
        else f"{facts.ahead} run{'' if facts.ahead == 1 else 's'} ahead"
    )
    where = f"in queue {facts.queue!r}, {ahead}"
    if reason == RunReason.IN_QUEUE and message and not message.startswith("in queue "):
        where = f"{message}; {where}"  # e.g. why it was handed back
    return Waiting(shown, where, min(facts.ahead, POSITION_CAP))
