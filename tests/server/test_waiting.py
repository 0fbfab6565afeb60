"""The precedence of the reasons a pending run waits (domain.waiting, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batchyard.server.domain.runs import RunReason
from batchyard.server.domain.waiting import POSITION_CAP, QueueFacts, explain

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def facts(paused=False, limit=None, running=0, ahead=0):
    return QueueFacts("q", paused=paused, concurrency_limit=limit, running=running, ahead=ahead)


def test_dependencies_come_first_whatever_holds_the_queue():
    got = explain(RunReason.WAITING_ON_DEPENDENCIES, "2 runs", None, NOW, facts(paused=True))
    assert (got.reason, got.message) == (RunReason.WAITING_ON_DEPENDENCIES, "2 runs")


def test_a_retry_not_yet_due_outranks_a_paused_queue_and_then_gives_way():
    later = NOW + timedelta(seconds=30)
    got = explain(RunReason.WAITING_FOR_RETRY, "", later, NOW, facts(paused=True))
    assert got.reason == RunReason.WAITING_FOR_RETRY and later.isoformat() in got.message
    due = explain(RunReason.WAITING_FOR_RETRY, "", NOW - timedelta(seconds=1), NOW, facts())
    assert due.reason == RunReason.IN_QUEUE and due.position == 0


def test_paused_outranks_the_limit_which_outranks_the_position():
    assert explain(RunReason.IN_QUEUE, "", None, NOW, facts(True, 1, 1)).reason == (
        RunReason.QUEUE_PAUSED
    )
    at_limit = explain(RunReason.IN_QUEUE, "", None, NOW, facts(limit=2, running=2, ahead=5))
    assert at_limit.reason == RunReason.QUEUE_AT_LIMIT and "2 of 2 running" in at_limit.message
    room = explain(RunReason.RECENTLY_SUBMITTED, "", None, NOW, facts(limit=2, running=1, ahead=1))
    assert (room.reason, room.position) == (RunReason.RECENTLY_SUBMITTED, 1)
    assert room.message == "in queue 'q', 1 run ahead"


@pytest.mark.parametrize(("ahead", "text"), [(0, "0 runs ahead"), (POSITION_CAP, "at least")])
def test_positions_are_capped(ahead, text):
    got = explain(RunReason.IN_QUEUE, "", None, NOW, facts(ahead=ahead))
    assert text in got.message and got.position == ahead


def test_why_it_was_handed_back_is_kept_beside_the_position():
    got = explain(RunReason.IN_QUEUE, "released by worker w1", None, NOW, facts(ahead=3))
    assert got.message == "released by worker w1; in queue 'q', 3 runs ahead"


def test_unknown_queue_facts_leave_the_stored_answer():
    got = explain(RunReason.IN_QUEUE, "stored", None, NOW, None)
    assert (got.reason, got.message, got.position) == (RunReason.IN_QUEUE, "stored", None)
