"""Shipping an attempt's log to the server: a spool, one short AppendLogs call per cycle.

:class:`LogShipper` is the :class:`~batchyard.worker.output.collector.LogSink` of a leased attempt.
``emit`` encodes the record once, in its wire form (:mod:`batchyard.worker.shipping.wire`), and
appends it to a :class:`~batchyard.worker.shipping.spool.LogSpool` (memory, then a spill file), so
the job's output is drained at full speed whatever the server does. The spool groups entries
in segments of at most ``message_entries`` entries and ``message_bytes`` bytes: one segment
is one AppendLogs message. A background task ships what is pending:

* **Flush cycle**: take the pending segments (up to ``call_entries`` entries /
  ``call_bytes``, ~4 MiB), send them as one client-streaming ``AppendLogs`` call (one
  message per segment), close the call, read ``acked_seq``. If more is pending the next
  cycle starts at once.
* **Latency**: a job's line waits at most ``flush_interval`` (30 ms by default) after the
  first pending line arrived before a cycle starts, less once a full message is pending or
  the attempt's log has ended; a quiet job costs no call at all. The worker's own entries
  alone wait up to ``system_flush_interval`` (200 ms): an attempt that ends sooner — most
  short jobs — ships its whole log in the one call that ends it.
* **Acknowledgements**: the shipper keeps every sent record until the server acknowledged
  it. After a failed call (UNAVAILABLE, DEADLINE_EXCEEDED, a broken stream, a server
  restart) it backs off and resends from the last acknowledgement; the server ignores
  entries it already stored, so nothing is lost and nothing doubles. This goes on for as
  long as the caller lets it — in practice while the heartbeat keeps the lease.
* **Fencing**: ``ABORTED`` (LEASE_LOST) or ``NOT_FOUND`` ends shipping at once: what is
  pending is dropped and ``on_lease_lost`` is called (the job is being killed anyway).
* **Giving up**: a server without AppendLogs (UNIMPLEMENTED) or an answer that cannot be
  fixed by resending (INVALID_ARGUMENT, PERMISSION_DENIED, …) ends shipping with one error in
  the worker's log; the attempt itself carries on and is reported as usual. So do repeated
  INTERNAL/UNKNOWN failures (``max_odd_failures`` in a row).

:meth:`LogShipper.wait_shipped` is the final flush: after the attempt's log is closed it
returns once ``acked_seq`` reached the last seq (True), or shipping stopped (False).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import grpc
import structlog

from batchyard.worker.output.collector import LogRecord, Stream
from batchyard.worker.output.lines import truncation_marker
from batchyard.worker.server_api import Backoff, Lease, LeaseLost, status_code
from batchyard.worker.shipping.options import MAX_ENTRY_CHARS, ShippingOptions
from batchyard.worker.shipping.spool import LogSpool, Segment
from batchyard.worker.shipping.wire import encode_entry, request_header, time_field

__all__ = ["LogShipper", "Send", "ShippingOptions"]

_log = structlog.get_logger(__name__)

Send = Callable[[Sequence[bytes], float], Awaitable[int]]
"""Sends one AppendLogs call of serialized messages and returns ``acked_seq``
(``WorkerApi.append_logs``)."""

_RETRY = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # e.g. the server's concurrent-call limit
        grpc.StatusCode.CANCELLED,
    }
)
_RETRY_SOME = frozenset(
    {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS}
)


class LogShipper:
    """The log sink of one leased attempt: spools records and ships them to the server."""

    def __init__(
        self,
        lease: Lease,
        send: Send,
        options: ShippingOptions | None = None,
        *,
        on_lease_lost: Callable[[], None] | None = None,
    ) -> None:
        self._lease = lease
        self._send = send
        self._options = options = options or ShippingOptions()
        self._on_lease_lost = on_lease_lost
        self._header = request_header(lease.run, lease.attempt, lease.lease_id)
        self._spool = LogSpool(
            options.spool_dir,
            max_memory_bytes=options.max_memory_bytes,
            segment_entries=options.message_entries,
            segment_bytes=options.message_bytes - len(self._header),
        )
        self._append = self._spool.append
        self._moment: datetime | None = None
        self._time = b""
        self._unacked: list[Segment] = []
        """Segments taken from the spool and sent (or being sent), not yet acknowledged."""
        self._acked = 0
        self._last_seq = 0
        self._pending = 0  # records in the spool, as counted by emit (for the linger)
        self._urgent_count = options.message_entries
        self._idle = True  # nothing pending: the next emit starts the linger clock
        self._only_system = False  # what is pending is the worker's own entries only
        self._deadline = 0.0  # when the pending entries must be on their way
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._closed = False
        self._flush_now = False  # someone waits for everything to be acknowledged
        self._stopped: str | None = None  # why shipping ended early
        self._task: asyncio.Task[None] | None = None
        self.calls = 0
        """AppendLogs calls that succeeded (statistics, tests)."""

    # ------------------------------------------------------------------ LogSink

    def emit(self, record: LogRecord) -> None:
        """Encodes and spools a record (never blocks, never refuses one)."""
        if self._stopped is not None:
            return
        seq, moment, stream, level, message = record
        if moment is not self._moment:  # the lines of one chunk share their time
            self._moment = moment
            self._time = time_field(moment)
        if len(message) > MAX_ENTRY_CHARS:  # cannot happen with the worker's line cap
            message = _shorten(message, MAX_ENTRY_CHARS - 64)
        self._append(seq, encode_entry(seq, self._time, stream, level, message))
        self._last_seq = seq
        self._pending += 1
        if self._idle:
            self._idle = False
            self._only_system = stream is Stream.SYSTEM
            self._deadline = time.monotonic() + (
                self._options.system_flush_interval
                if self._only_system
                else self._options.flush_interval
            )
            self._wake.set()
        elif self._only_system and stream is not Stream.SYSTEM:
            self._only_system = False  # a job line: the short deadline applies
            self._deadline = min(self._deadline, time.monotonic() + self._options.flush_interval)
            self._urgent.set()
        elif self._pending == self._urgent_count:
            self._urgent.set()

    def close(self) -> None:
        """No record follows. What is left is then either handed over with
        :meth:`take_final` or shipped at once by :meth:`wait_shipped`."""
        self._closed = True
        self._wake.set()

    # ------------------------------------------------------------------ control

    @property
    def acked_seq(self) -> int:
        """The highest seq the server acknowledged: 1..acked_seq are stored."""
        return self._acked

    @property
    def last_seq(self) -> int:
        """The seq of the last record received."""
        return self._last_seq

    @property
    def lease_lost(self) -> bool:
        """Whether the server refused a call because the lease is gone."""
        return self._stopped == "lease lost"

    @property
    def spool(self) -> LogSpool:
        return self._spool

    def start(self) -> None:
        """Starts the background shipping task (once)."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._ship(), name=f"logs-{self._lease.run}-{self._lease.attempt}"
            )

    async def wait_shipped(self) -> bool:
        """Waits until every record is acknowledged (True) or shipping stopped (False).

        Call after the log was closed, or it waits for that too. Cancelling the wait leaves
        shipping running; :meth:`aclose` ends it.
        """
        self.start()
        assert self._task is not None
        self._flush_now = True
        self._urgent.set()
        await asyncio.wait({self._task})
        return self._stopped is None and self._acked >= self._last_seq

    def take_final(self) -> bytes | None:
        """Once the log is closed: hand over what is still pending when nothing is on its
        way and it fits one message — a serialized AppendLogsRequest the caller sends with
        CompleteRun, which saves a short attempt a whole AppendLogs call; b"" when nothing
        is pending. None: ship the usual way (:meth:`wait_shipped`)."""
        if not self._closed or self._stopped is not None or self._unacked:
            return None
        if not len(self._spool):
            return b""
        segment = self._spool.take_single()
        if segment is None:
            return None
        self._pending = 0
        self._acked = segment.last_seq  # from here on the caller's CompleteRun carries them
        self._wake.set()
        return self._header + segment.data

    def abandon(self, reason: str = "abandoned") -> None:
        """Stops shipping now and drops what is pending (e.g. the lease is lost)."""
        if self._stopped is None:
            self._stopped = reason
        if self._task is not None:
            self._task.cancel()
        self._unacked.clear()
        self._spool.close()

    async def aclose(self) -> None:
        """Stops shipping (dropping what is left) and releases the spool (idempotent)."""
        task = self._task
        if task is not None and not task.done():
            self.abandon()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task})
        self._unacked.clear()
        self._spool.close()

    # ------------------------------------------------------------------ the task

    async def _ship(self) -> None:
        failures = _Failures(self._options)
        try:
            while await self._wait_for_work():
                messages = self._next_batch()
                if not messages:  # handed over meanwhile (take_final)
                    continue
                if not await self._cycle(messages, failures):
                    return
        except Exception as exc:  # a bug must not take the attempt down with it
            _log.exception("logs_shipping_crashed")
            self._give_up("CRASHED", repr(exc))

    async def _wait_for_work(self) -> bool:
        """Waits until entries are pending, then lingers to batch them; False once the log
        is closed and every entry acknowledged."""
        while not self._unacked and not len(self._spool):
            if self._closed:
                return False
            self._idle = True
            self._wake.clear()
            await self._wake.wait()
        await self._linger()
        return True

    async def _cycle(self, messages: list[bytes], failures: _Failures) -> bool:
        """One AppendLogs call and what follows from its answer; False: shipping ended."""
        try:
            acked = await self._send(messages, self._options.call_timeout)
        except LeaseLost as exc:
            self._stop("lease lost")
            _log.warning("lease_lost", call="AppendLogs", detail=str(exc))
            if self._on_lease_lost is not None:
                self._on_lease_lost()
            return False
        except grpc.aio.AioRpcError as exc:
            return await self._after_failure(exc, failures)
        self.calls += 1
        if self._acknowledge(acked):
            failures.reset()
            return True
        failures.odd += 1  # stored nothing new: do not spin on it
        if failures.odd >= self._options.max_odd_failures:
            self._give_up("NO_PROGRESS", f"acked_seq stays at {acked}")
            return False
        await asyncio.sleep(failures.backoff.next())
        return True

    async def _after_failure(self, exc: grpc.aio.AioRpcError, failures: _Failures) -> bool:
        """Backs off before a resend, or gives up (False) on what resending cannot fix."""
        code = status_code(exc)
        if code in _RETRY_SOME:
            failures.odd += 1
        if code not in _RETRY and (
            code not in _RETRY_SOME or failures.odd >= self._options.max_odd_failures
        ):
            self._give_up(code.name, exc.details())
            return False
        delay = failures.backoff.next()
        _log.info(
            "logs_append_retrying",
            code=code.name,
            retry_in=round(delay, 3),
            from_seq=self._acked + 1,
        )
        await asyncio.sleep(delay)
        return True

    async def _linger(self) -> None:
        """Waits until the pending entries' deadline, to batch; no longer once a full
        message is pending or a flush was asked for (:meth:`wait_shipped`)."""
        while not self._flush_now and not self._unacked and self._pending < self._urgent_count:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                return
            self._urgent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), remaining)

    def _next_batch(self) -> list[bytes]:
        """The call's messages: the unacknowledged segments (a resend) followed by what the
        spool holds, within the call's bounds. Segments stay in ``_unacked`` until
        acknowledged."""
        options = self._options
        unacked = self._unacked
        entries = sum(segment.entries for segment in unacked)
        size = sum(len(segment.data) for segment in unacked)
        if entries < options.call_entries and size < options.call_bytes:
            unacked += self._spool.take(options.call_entries - entries, options.call_bytes - size)
            self._pending = len(self._spool)
            if not self._pending:
                self._idle = True  # the next emit restarts the linger clock
        header = self._header
        return [header + segment.data for segment in unacked]

    def _acknowledge(self, acked: int) -> bool:
        """Drops what the server acknowledged; False if nothing new was acknowledged."""
        progressed = acked > self._acked
        if progressed:
            self._acked = acked
        unacked = self._unacked
        done = 0
        while done < len(unacked) and unacked[done].last_seq <= self._acked:
            done += 1
        if done:
            del unacked[:done]
            progressed = True
        return progressed or not unacked

    def _stop(self, reason: str) -> None:
        self._stopped = reason
        self._unacked.clear()
        self._spool.close()

    def _give_up(self, code: str, detail: str | None) -> None:
        dropped = sum(segment.entries for segment in self._unacked) + len(self._spool)
        self._stop("gave up")
        _log.error(
            "logs_shipping_stopped",
            code=code,
            detail=detail,
            acked_seq=self._acked,
            dropped_entries=dropped,
        )


def _shorten(message: str, max_chars: int) -> str:
    """Cuts a message to ``max_chars`` characters and appends the truncation marker."""
    kept = message[:max_chars]
    return kept + truncation_marker(len(message.encode()) - len(kept.encode()))


class _Failures:
    """The shipper's backoff, and its count of odd failures in a row (INTERNAL, UNKNOWN,
    DATA_LOSS, or calls that stored nothing new)."""

    def __init__(self, options: ShippingOptions) -> None:
        self.backoff = Backoff(options.backoff_initial, options.backoff_maximum)
        self.odd = 0

    def reset(self) -> None:
        self.backoff.reset()
        self.odd = 0
