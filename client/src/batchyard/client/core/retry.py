"""Retrying calls that are safe to repeat when the server cannot be reached: the policy,
and the decision for one call (both faces share it; they differ only in how they sleep).

A call is retried only when it failed with UNAVAILABLE (the server is restarting, a load
balancer has no replica ready, the network blinked) and repeating it cannot do anything
twice: reads (Get…, List…) and a SubmitRun that carries a `request_id` (the server
returns the run created first). Everything else fails at once: a CancelRun or a
CreateDefinition that timed out may have been applied.

The pauses grow exponentially (0.25 s, 0.5 s, 1 s, ... up to `max_backoff`), each cut by
a random part of up to half (jitter), so that many clients losing one server do not
come back in step. The call's deadline covers every try: no retry starts after it.

Streams resume on their own (see `batchyard.client.core.streams`), from where they
stopped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Methods whose every call is safe to repeat (reads), by their last path component.
_READ_PREFIXES = ("Get", "List")
# Methods safe to repeat when their request carries a request id.
_KEYED = frozenset({"SubmitRun"})


@dataclass(frozen=True)
class RetryPolicy:
    """How calls that are safe to repeat are retried on UNAVAILABLE.

    Attributes:
        max_attempts: tries in all, the first included (1: no retry).
        initial_backoff: seconds before the first retry.
        max_backoff: the longest pause between two tries.
        multiplier: how much each pause grows over the previous one.
        jitter: the part of each pause that is random (0: none, 0.5: the pause is
            between half and all of its nominal length).
    """

    max_attempts: int = 6
    initial_backoff: float = 0.25
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be 0 or more and the multiplier at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The pauses before each retry, in seconds (`max_attempts - 1` of them)."""
        draw = (rng or random).random
        nominal = self.initial_backoff
        for _ in range(self.max_attempts - 1):
            capped = min(nominal, self.max_backoff)
            yield capped * (1 - self.jitter * draw())
            nominal *= self.multiplier


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries."""


def is_idempotent(method: str | bytes, request: Any) -> bool:
    """Whether the call of `method` ("/batchyard.v1.RunService/GetRun") with `request`
    may be repeated without doing anything twice."""
    if isinstance(method, bytes):
        method = method.decode()
    name = method.rsplit("/", 1)[-1]
    if name.startswith(_READ_PREFIXES):
        return True
    return name in _KEYED and bool(getattr(request, "request_id", ""))


class CallBudget:
    """One call's tries: the time left before its deadline, and after a failure whether
    to try again and after which pause."""

    def __init__(self, policy: RetryPolicy, seconds: float | None, idempotent: bool) -> None:
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._delays = policy.delays() if idempotent else iter(())

    def left(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self._deadline is None else self._deadline - time.monotonic()

    def pause(self, unavailable: bool) -> float | None:
        """After a failed try: the pause before the next one, or None to give up (not
        UNAVAILABLE, no retry left, or the deadline would pass while pausing)."""
        if not unavailable:
            return None
        delay = next(self._delays, None)
        left = self.left()
        if delay is None or (left is not None and left <= delay):
            return None
        return delay
