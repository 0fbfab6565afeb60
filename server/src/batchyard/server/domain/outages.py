"""Leases across outages of the service: the rule, pure (server/README.md, "Leases across
outages", gives the argument).

Every replica's maintenance ticks one row in the database each pass. A gap between two
ticks longer than a few tick intervals means no replica could reach the database for that
long, so no worker could have renewed: the tick that finds the gap extends every lease
that was still live at the last tick, before any rescue pass may judge it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

GAP_TICKS = 3
"""A gap longer than this many tick intervals is an outage (shorter ones are jitter)."""
MIN_GAP_SECONDS = 5.0
"""And never shorter than this (a loaded machine stalls for a second or two)."""
RECONNECT_GRACE_SECONDS = 10.0
"""After an outage every lease lasts at least a TTL, and at least this long: workers whose
channels backed off while the service was away need a moment to reconnect."""


@dataclass(frozen=True)
class Extension:
    """What a tick that found an outage does to every lease live at the last tick."""

    gap_seconds: float
    """How long nobody ticked."""
    extend_seconds: float
    """Added to each such lease: the gap, at most the maximum outage."""
    floor: datetime | None
    """And no such lease ends before this (a full TTL after the outage, so every worker
    has time to reconnect; at least RECONNECT_GRACE_SECONDS), unless the outage was
    longer than the maximum."""


def outage_threshold(tick_seconds: float) -> float:
    """The shortest gap between ticks that counts as an outage."""
    return max(GAP_TICKS * tick_seconds, MIN_GAP_SECONDS)


def extension(
    last_tick: datetime | None,
    now: datetime,
    *,
    tick_seconds: float,
    ttl_seconds: float,
    max_outage_seconds: float,
) -> Extension | None:
    """The extension a tick at `now` owes the leases, after the last tick at `last_tick`
    (None: no replica ever ticked, nothing to make up for); None: no outage."""
    if last_tick is None:
        return None
    gap = (now - last_tick).total_seconds()
    if gap <= outage_threshold(tick_seconds) or max_outage_seconds <= 0:
        return None
    extend = min(gap, max_outage_seconds)
    grace = timedelta(seconds=max(ttl_seconds, RECONNECT_GRACE_SECONDS))
    floor = now + grace if gap <= max_outage_seconds else None
    return Extension(gap_seconds=gap, extend_seconds=extend, floor=floor)
