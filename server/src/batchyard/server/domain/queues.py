"""Queues: what a queue is, how it is validated and updated (pure)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.job_validation import QUEUE
from batchyard.server.domain.jobs import DEFAULT_QUEUE

MAX_DESCRIPTION = 1000
MAX_PRIORITY = 1000
MAX_LIMIT = 100_000
UPDATABLE = ("description", "priority", "state", "concurrency_limit")


class QueueState(StrEnum):
    ENABLED = "ENABLED"
    PAUSED = "PAUSED"


@dataclass(frozen=True)
class QueueDraft:
    """What a caller sets on a queue. `state` None: not given (or unknown, refused)."""

    name: str
    description: str = ""
    priority: int = 0
    state: QueueState | None = QueueState.ENABLED
    concurrency_limit: int | None = None


@dataclass(frozen=True)
class QueueStats:
    pending: int
    running: int
    oldest_pending_submitted: datetime | None
    age_seconds: float | None


@dataclass(frozen=True)
class Queue:
    workspace: str
    draft: QueueDraft
    create_time: datetime
    update_time: datetime
    stats: QueueStats


def name_violations(name: str, field: str = "name") -> list[FieldViolation]:
    if not name:
        return [FieldViolation(field, "required: a queue name")]
    if not QUEUE.match(name):
        return [FieldViolation(field, "1 to 100 letters, digits, '.', '_' or '-', starting alnum")]
    return []


def validate(draft: QueueDraft) -> list[FieldViolation]:
    """Violations of a queue's settings (field paths relative to the Queue message)."""
    out = name_violations(draft.name)
    if len(draft.description) > MAX_DESCRIPTION:
        out.append(FieldViolation("description", f"at most {MAX_DESCRIPTION} characters"))
    if not -MAX_PRIORITY <= draft.priority <= MAX_PRIORITY:
        out.append(FieldViolation("priority", f"{-MAX_PRIORITY} to {MAX_PRIORITY}"))
    if draft.state is None:
        out.append(FieldViolation("state", "unknown queue state"))
    limit = draft.concurrency_limit
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        out.append(FieldViolation("concurrency_limit", f"0 (no limit) or 1 to {MAX_LIMIT}"))
    return out


def apply_update(current: QueueDraft, changes: QueueDraft, paths: list[str]) -> QueueDraft:
    """The queue after replacing the fields named by `paths` (validated)."""
    if not paths:
        raise InvalidArgument([FieldViolation("update_mask", "required: name the fields")])
    unknown = sorted(set(paths) - set(UPDATABLE))
    if unknown:
        raise InvalidArgument(
            [FieldViolation("update_mask", f"cannot update {p!r}") for p in unknown]
        )
    updated = replace(current, **{p: getattr(changes, p) for p in paths})
    violations = [v.under("changes") for v in validate(updated)]
    if violations:
        raise InvalidArgument(violations)
    return updated


def deletable(name: str) -> str:
    """Why a queue may not be deleted whatever it holds ('' when it may)."""
    return "the default queue cannot be deleted" if name == DEFAULT_QUEUE else ""
