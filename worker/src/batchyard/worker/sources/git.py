"""GIT sources: the adapter of the source port over :mod:`~batchyard.worker.sources.git_clone`
(which is blocking: it runs in a thread, off the event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from batchyard.config import Flag, Kind, choice, comma_list, duration
from batchyard.v1 import job_pb2
from batchyard.worker.sources.git_clone import (
    DEFAULT_GIT_TIMEOUT,
    DEFAULT_PROTOCOLS,
    KNOWN_PROTOCOLS,
    GitCheckout,
    GitOptions,
    fetch_git,
)
from batchyard.worker.sources.port import Note

_T = TypeVar("_T")
_TRANSPORTS = comma_list(choice(*KNOWN_PROTOCOLS, metavar="TRANSPORT"))


def _transports(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_TRANSPORTS.parse(raw)))


GIT_PROTOCOLS = Flag(
    "git-protocols",
    Kind(_transports, ",".join, "TRANSPORT,..."),
    f"transports GIT sources may use, of {', '.join(KNOWN_PROTOCOLS)} (file only for tests)",
    default=DEFAULT_PROTOCOLS,
)
GIT_TIMEOUT = Flag(
    "git-timeout",
    duration(0.001, 7 * 24 * 3600.0),
    "how long a GIT source's fetch may take, at most the attempt's timeout",
    default=DEFAULT_GIT_TIMEOUT,
)
FLAGS = (GIT_PROTOCOLS, GIT_TIMEOUT)


class GitSource:
    """A clone of the job's repository at its reference."""

    writes_files = True

    def __init__(self, source: job_pb2.GitSource, options: GitOptions) -> None:
        self._source = source
        self._options = options
        self._checkout: GitCheckout | None = None

    async def fetch(self, destination: Path, note: Note) -> Path:
        checkout = await _to_completion(fetch_git, self._source, destination, self._options)
        self._checkout = checkout
        return checkout.root

    def describe(self) -> str:
        return "" if self._checkout is None else self._checkout.describe(self._source)


async def _to_completion(function: Callable[..., _T], *args: object) -> _T:
    """``function`` in a thread; cancelled, it still waits for the thread (git cannot be
    stopped half-way without leaving files behind), then raises CancelledError."""
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait((work,))
        raise
