"""The background services' owner: order of start and stop, and what a crashed loop does
(restarted after a backoff, or the end of the server), never silently gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import structlog.testing

from batchyard.server.lifecycle import Policy, Supervisor
from batchyard.server.maintenance.clock import ManualClock


class Recorder:
    """A service that notes its start and stop, and whose loop crashes `crashes` times."""

    def __init__(self, name: str, log: list[str], crashes: int = 0) -> None:
        self.name = name
        self._log = log
        self._crashes = crashes
        self.runs = 0

    async def start(self) -> None:
        self._log.append(f"start {self.name}")

    async def stop(self) -> None:
        self._log.append(f"stop {self.name}")

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self._crashes:
            raise RuntimeError(f"{self.name} broke")
        await asyncio.Event().wait()


class Plain:
    """A service with no loop."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self._log = log

    async def start(self) -> None:
        self._log.append(f"start {self.name}")

    async def stop(self) -> None:
        self._log.append(f"stop {self.name}")


async def until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_services_start_in_order_and_stop_in_reverse():
    log: list[str] = []
    supervisor = Supervisor(on_fatal=lambda name: None)
    await supervisor.start(Recorder("a", log))
    await supervisor.start(Plain("b", log))
    await supervisor.start(Recorder("c", log), Policy.FATAL)
    await supervisor.stop()
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_a_crashed_loop_is_logged_and_restarted_with_backoff():
    log: list[str] = []
    supervisor = Supervisor(on_fatal=pytest.fail, first_backoff=0.01, max_backoff=0.02)
    service = Recorder("flaky", log, crashes=3)
    with structlog.testing.capture_logs() as logs:
        await supervisor.start(service)
        await until(lambda: service.runs == 4)
    assert supervisor.crashes("flaky") == 3
    await supervisor.stop()
    failed = [e for e in logs if e["event"] == "service_failed"]
    assert len(failed) == 3
    assert failed[0]["service"] == "flaky" and failed[0]["policy"] == "restart"
    assert str(failed[0]["exc_info"]) == "flaky broke"


async def test_a_crashed_fatal_loop_ends_the_server():
    log: list[str] = []
    ended: list[str] = []
    supervisor = Supervisor(on_fatal=ended.append, first_backoff=0.01)
    service = Recorder("trail", log, crashes=5)
    with structlog.testing.capture_logs() as logs:
        await supervisor.start(service, Policy.FATAL)
        await until(lambda: ended == ["trail"])
    await asyncio.sleep(0.05)
    assert service.runs == 1, "a fatal loop is not restarted"
    assert [e["service"] for e in logs if e["event"] == "service_failed"] == ["trail"]
    await supervisor.stop()
    assert log == ["start trail", "stop trail"]


async def test_a_service_that_fails_to_stop_does_not_keep_the_others_running():
    log: list[str] = []

    class Stuck(Plain):
        async def stop(self) -> None:
            raise OSError("disk gone")

    supervisor = Supervisor(on_fatal=pytest.fail)
    await supervisor.start(Plain("first", log))
    await supervisor.start(Stuck("stuck", log))
    with structlog.testing.capture_logs() as logs:
        await supervisor.stop()
    assert log == ["start first", "start stuck", "stop first"]
    assert [e["event"] for e in logs] == ["service_stop_failed"]


async def test_the_manual_clock_moves_only_when_told():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ManualClock(start)
    await clock.sleep(90)
    assert clock.now() == datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)
    assert (clock.advance(30) - start).total_seconds() == 120


# ---------------------------------------------------------------- in the real server


async def test_the_server_starts_its_services_in_order(server):
    names = [(s.name, p.value) for s, p in server._services.with_policies()]
    assert names == [
        ("wakeups", "restart"),
        ("audit-writer", "fatal"),
        ("result-deleter", "restart"),
        ("submit-batcher", "restart"),
        ("definition-reader", "restart"),
        ("lease-rescuer", "restart"),
        ("pipeline-sweeper", "restart"),
        ("scheduler", "restart"),
        ("retention", "restart"),
    ]


async def test_a_crashed_rescuer_is_restarted(server_factory, monkeypatch):
    from batchyard.server.db import attempt_end

    real = attempt_end.rescue_expired
    calls = 0

    async def broken_once(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in one pass")
        return await real(*args, **kwargs)

    monkeypatch.setattr(attempt_end, "rescue_expired", broken_once)
    with structlog.testing.capture_logs() as logs:
        app = await server_factory(rescue_interval_seconds=0.05)
        await until(lambda: calls >= 3)
    assert app._supervisor.crashes("lease-rescuer") == 1
    assert not app.failed.is_set()
    (failed,) = [e for e in logs if e["event"] == "service_failed"]
    assert failed["service"] == "lease-rescuer"


async def test_a_crashed_audit_writer_ends_the_server(server_factory, monkeypatch):
    from batchyard.server.api.audit import AuditLog

    async def broken(self):
        raise RuntimeError("audit trail broken")

    monkeypatch.setattr(AuditLog, "run", broken)
    app = await server_factory()
    await asyncio.wait_for(app.failed.wait(), 10)
    assert app.failure == "audit-writer"


async def test_a_flush_waits_for_the_flush_under_way(monkeypatch):
    """ListAuditEvents flushes before it reads: it must not read while the writer's own
    flush still holds the events it took."""
    from uuid import uuid4

    from batchyard.server.api import audit as audit_module
    from batchyard.server.db import access as audit_store

    stored: list[int] = []
    release = asyncio.Event()

    async def slow_insert(pool, events):
        await release.wait()
        stored.append(len(events))

    monkeypatch.setattr(audit_store, "insert_audit_events", slow_insert)
    trail = audit_module.AuditLog(pool=None)
    trail.record_in(uuid4(), "someone", "token.create", "token", "t1")
    first = asyncio.create_task(trail.flush())
    await asyncio.sleep(0)
    second = asyncio.create_task(trail.flush())
    await asyncio.sleep(0.05)
    assert not second.done(), "the second flush returned before the events were stored"
    release.set()
    await asyncio.gather(first, second)
    assert stored == [1]
