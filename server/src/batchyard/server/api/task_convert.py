"""TaskSummary between protobuf and its stored JSON form, bounded on the way in."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.v1 import task_pb2

MAX_PHASES = 16
MAX_ERRORS = 20
MAX_NAME = 32
MAX_TEXT = 1024
MAX_BYTES = 64 * 1024


def tasks_from_pb(summary: task_pb2.TaskSummary) -> dict[str, Any]:
    """The summary as stored; InvalidArgument (paths below ``tasks``) when out of bounds."""
    out = []
    if len(summary.phases) > MAX_PHASES:
        out.append(FieldViolation("tasks.phases", f"at most {MAX_PHASES} phases"))
    for i, phase in enumerate(summary.phases[:MAX_PHASES]):
        if not 1 <= len(phase.name) <= MAX_NAME:
            out.append(FieldViolation(f"tasks.phases[{i}].name", f"1 to {MAX_NAME} characters"))
        for state in ("pending", "running", "done", "failed"):
            if getattr(phase, state) < 0:
                out.append(FieldViolation(f"tasks.phases[{i}].{state}", "must not be negative"))
    if not 0 <= summary.percent_complete <= 100:
        out.append(FieldViolation("tasks.percent_complete", "0 to 100"))
    if len(summary.errors) > MAX_ERRORS:
        out.append(FieldViolation("tasks.errors", f"at most {MAX_ERRORS} errors"))
    for i, error in enumerate(summary.errors[:MAX_ERRORS]):
        for name in ("phase", "task", "message"):
            if len(getattr(error, name)) > MAX_TEXT:
                out.append(
                    FieldViolation(f"tasks.errors[{i}].{name}", f"at most {MAX_TEXT} characters")
                )
    if summary.ByteSize() > MAX_BYTES:
        out.append(FieldViolation("tasks", "at most 64 KiB"))
    if out:
        raise InvalidArgument(out)
    return json_format.MessageToDict(summary, preserving_proto_field_name=True)


def tasks_to_pb(stored: dict[str, Any] | None, out: task_pb2.TaskSummary) -> None:
    if stored is not None:
        json_format.ParseDict(stored, out, ignore_unknown_fields=True)
