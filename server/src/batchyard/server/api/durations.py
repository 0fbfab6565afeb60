"""Every `google.protobuf.Duration` in a request must be one the protobuf spec allows:
seconds within ±315,576,000,000 and nanos within ±999,999,999 with the sign of the
seconds. Python's protobuf decodes any pair of integers, so without this check a request
could carry "1 second and -2,000,000,000 nanos".

The walk visits only the fields that can lead to a Duration (a plan made once per message
type), so a request without durations costs a look-up.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from batchyard.server.domain.errors import FieldViolation

DURATION = "google.protobuf.Duration"
MAX_SECONDS = 315_576_000_000
MAX_NANOS = 999_999_999


def bad_durations(message: Any, prefix: str = "") -> list[FieldViolation]:
    """A violation for each invalid Duration in `message`, named by its path."""
    plan = _plan(message.DESCRIPTOR)
    if not plan:
        return []
    out: list[FieldViolation] = []
    for field, value in message.ListFields():  # only the fields that are set
        target = plan.get(field.name)
        if target is None:
            continue
        path = f"{prefix}{field.name}"
        if _is_map(field):
            for key, item in value.items():
                out += _check(target, item, f"{path}[{key!r}]")
        elif field.is_repeated:
            for i, item in enumerate(value):
                out += _check(target, item, f"{path}[{i}]")
        else:
            out += _check(target, value, path)
    return out


def _check(target: Descriptor, value: Any, path: str) -> list[FieldViolation]:
    if target.full_name != DURATION:
        return bad_durations(value, path + ".")
    problem = duration_problem(value.seconds, value.nanos)
    return [FieldViolation(path, problem)] if problem else []


def duration_problem(seconds: int, nanos: int) -> str | None:
    """What is wrong with a Duration of these parts, or None."""
    if not -MAX_SECONDS <= seconds <= MAX_SECONDS:
        return f"seconds must be within ±{MAX_SECONDS:,}"
    if not -MAX_NANOS <= nanos <= MAX_NANOS:
        return f"nanos must be within ±{MAX_NANOS:,}"
    if (seconds > 0 > nanos) or (seconds < 0 < nanos):
        return "seconds and nanos must have the same sign"
    return None


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


def _target(field: FieldDescriptor) -> Descriptor | None:
    """The message type a field holds (a map's value type), or None for scalars."""
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return None
    if _is_map(field):
        value = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
        return value.message_type if value.type == FieldDescriptor.TYPE_MESSAGE else None
    return field.message_type


@functools.cache
def _plan(descriptor: Descriptor) -> dict[str, Descriptor]:
    """The fields of `descriptor` that are, or may contain, a Duration: name → its type."""
    plan = {}
    for field in descriptor.fields:
        target = _target(field)
        if target is not None and _leads_to_duration(target, (descriptor.full_name,)):
            plan[field.name] = target
    return plan


def _leads_to_duration(descriptor: Descriptor, visiting: tuple[str, ...]) -> bool:
    if descriptor.full_name == DURATION:
        return True
    if descriptor.full_name in visiting:
        return False  # a cycle: the type itself is being looked at already
    inner = (*visiting, descriptor.full_name)
    return any(
        target is not None and _leads_to_duration(target, inner)
        for target in map(_target, descriptor.fields)
    )
