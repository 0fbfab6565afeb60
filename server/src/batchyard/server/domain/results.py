"""Result assets: what a worker may report about the files an attempt produced."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from batchyard.server.domain.errors import FieldViolation

MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255
MAX_RESULTS_PER_ATTEMPT = 10_000
MAX_MEDIA_TYPE = 255
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPE = re.compile(r"^[\x21-\x7e]+/[\x21-\x7e]+$")


@dataclass(frozen=True)
class Result:
    """One stored file of an attempt."""

    attempt: int
    name: str
    size_bytes: int
    sha256: str
    media_type: str
    created_at: datetime | None = None


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a result (None: it can).

    A name is a "/"-separated path relative to the output directory: not absolute, no empty,
    "." or ".." component, no NUL or backslash, at most 1024 bytes (255 per component)."""
    if not name:
        return "required"
    if "\x00" in name or "\\" in name:
        return "must not contain NUL or backslash"
    try:
        encoded = name.encode()
    except UnicodeEncodeError:
        return "must be valid UTF-8"
    if len(encoded) > MAX_NAME_BYTES:
        return f"at most {MAX_NAME_BYTES} bytes"
    if name.startswith("/"):
        return "must be relative (no leading '/')"
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return "no empty, '.' or '..' path component"
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            return f"each path component at most {MAX_COMPONENT_BYTES} bytes"
    return None


def validate_results(results: list[Result], attempt: int) -> list[FieldViolation]:
    """The violations of an attempt's reported results (field paths `results[i].…`)."""
    if len(results) > MAX_RESULTS_PER_ATTEMPT:
        return [FieldViolation("results", f"at most {MAX_RESULTS_PER_ATTEMPT} per attempt")]
    violations: list[FieldViolation] = []
    seen: set[str] = set()
    for i, result in enumerate(results):
        at = f"results[{i}]"
        problem = name_problem(result.name)
        if problem is not None:
            violations.append(FieldViolation(f"{at}.name", problem))
        elif result.name in seen:
            violations.append(FieldViolation(f"{at}.name", "reported twice"))
        seen.add(result.name)
        if result.size_bytes < 0:
            violations.append(FieldViolation(f"{at}.size_bytes", "must not be negative"))
        if not _SHA256.match(result.sha256):
            violations.append(FieldViolation(f"{at}.sha256", "64 lowercase hex digits"))
        if len(result.media_type) > MAX_MEDIA_TYPE or not _MEDIA_TYPE.match(result.media_type):
            violations.append(FieldViolation(f"{at}.media_type", "a media type like text/csv"))
        if result.attempt not in (0, attempt):
            violations.append(FieldViolation(f"{at}.attempt", "must be the request's attempt"))
    return violations
