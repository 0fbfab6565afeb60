"""The server's Prometheus metrics, each in a registry of its own (one per App).

Counters of what this replica did (RPCs, submits, leases) are counted as calls end, from
their responses (:class:`~batchyard.server.api.instrument.Observer`). What must be right
across replicas (pending depth, oldest pending age, running, stored runs by outcome, log
storage) is read from the database when scraped, at most once a second. No label holds a
run id: labels are queue, status, reason, method and code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from batchyard.server.db import metrics as store
from batchyard.server.domain.jobs import DEFAULT_QUEUE

log = structlog.get_logger(__name__)
CACHE_SECONDS = 1.0
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_SUBMITS = ("/batchyard.v1.RunService/SubmitRun", "/batchyard.v1.RunService/BatchSubmitRuns")
_LEASE = "/batchyard.v1.WorkerService/LeaseRuns"
_OBSERVED = frozenset({*_SUBMITS, _LEASE})


class _DatabaseGauges(Collector):
    def __init__(self, current: Callable[[], store.Snapshot | None]) -> None:
        self._current = current

    def collect(self) -> Iterator[Metric]:
        snap = self._current()
        if snap is None:
            return
        pending = GaugeMetricFamily(
            "batchyard_queue_pending_runs", "Runs PENDING in the queue", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "batchyard_queue_oldest_pending_seconds",
            "Age of the queue's oldest PENDING run (0: none)",
            labels=["queue"],
        )
        running = GaugeMetricFamily(
            "batchyard_queue_running_runs", "Runs RUNNING from the queue", labels=["queue"]
        )
        for g in snap.queues:
            pending.add_metric([g.queue], g.pending)
            oldest.add_metric([g.queue], g.oldest_pending_seconds)
            running.add_metric([g.queue], g.running)
        runs = GaugeMetricFamily(
            "batchyard_runs",
            "Runs stored, by queue, status and reason",
            labels=["queue", "status", "reason"],
        )
        for o in snap.outcomes:
            runs.add_metric([o.queue, o.status, o.reason], o.runs)
        yield from (pending, oldest, running, runs)
        yield GaugeMetricFamily(
            "batchyard_log_chunks_stored", "Log chunks stored (estimate)", value=snap.log_chunks
        )
        yield GaugeMetricFamily(
            "batchyard_log_bytes_stored", "Bytes the stored logs take", value=snap.log_bytes
        )


class _Callback(Collector):
    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._name, self._help, self._read = name, help_text, read

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._help, value=self._read())


class ServerMetrics:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.registry = CollectorRegistry(auto_describe=True)
        self._snapshot: store.Snapshot | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        r = self.registry
        self.rpcs = Counter(
            "batchyard_rpc", "RPCs served, by method and code", ["method", "code"], registry=r
        )
        self.rpc_seconds = Histogram(
            "batchyard_rpc_duration_seconds", "RPC latency by method", ["method"], registry=r
        )
        self.submitted = Counter(
            "batchyard_runs_submitted", "Runs submitted (by this replica)", ["queue"], registry=r
        )
        self.started = Counter(
            "batchyard_runs_started",
            "Runs leased to workers (by this replica)",
            ["queue"],
            registry=r,
        )
        self.lease_latency = Histogram(
            "batchyard_lease_latency_seconds",
            "Submit → RUNNING of leased runs",
            ["queue"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_DatabaseGauges(lambda: self._snapshot))

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read at scrape time (open streams, budgets)."""
        self.registry.register(_Callback(name, help_text, read))

    def finished(self, method: str, code: str, seconds: float, response: object) -> None:
        short = method.rpartition(".")[2]  # "RunService/SubmitRun"
        self.rpcs.labels(short, code).inc()
        self.rpc_seconds.labels(short).observe(seconds)
        if response is None or method not in _OBSERVED:
            return
        try:
            self._count(method, response)
        except Exception as exc:  # a boundary: a metric is never worth a failed call
            log.warning("rpc_metrics_failed", method=method, error=type(exc).__name__)

    def _count(self, method: str, response: Any) -> None:
        if method in _SUBMITS:
            items = response.responses if method.endswith("BatchSubmitRuns") else [response]
            for item in items:
                if not item.deduplicated:
                    self.submitted.labels(item.run.config.queue or DEFAULT_QUEUE).inc()
        elif response.runs:
            ids = [UUID(run.run) for run in response.runs]
            task = asyncio.get_running_loop().create_task(self._observe_leases(ids))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _observe_leases(self, ids: list[UUID]) -> None:
        try:
            for queue, seconds in await store.lease_latencies(self._pool, ids):
                self.started.labels(queue).inc()
                self.lease_latency.labels(queue).observe(max(seconds, 0.0))
        except Exception as exc:  # a boundary: a metric is never worth a failed lease
            log.warning("lease_metrics_failed", error=type(exc).__name__)

    async def render(self) -> tuple[bytes, str]:
        """The Prometheus text, with the database's values at most CACHE_SECONDS old."""
        async with self._lock:
            if time.monotonic() - self._read_at > CACHE_SECONDS:
                try:
                    self._snapshot = await store.snapshot(self._pool)
                    self._read_at = time.monotonic()
                except Exception as exc:  # a boundary: the rest is still worth serving
                    log.warning("metrics_database_failed", error=type(exc).__name__)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
