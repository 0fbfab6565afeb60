"""Opaque page tokens: the last key of a page plus a fingerprint of the query's filters.

A token only continues the query it came from: reusing it with other filters is an
INVALID_PAGE_TOKEN error, never a silently wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from batchyard.server.domain.errors import FieldViolation, InvalidArgument, InvalidPageToken

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LENGTH = 4096
"""Tokens this server makes are far shorter; a longer one is refused unread."""


def page_size(
    requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """The effective page size; negative sizes are the caller's error."""
    if requested < 0:
        raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
    return default if requested == 0 else min(requested, maximum)


def _fingerprint(filters: dict[str, Any]) -> str:
    blob = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def encode(key: list[Any], filters: dict[str, Any]) -> str:
    body = json.dumps({"k": key, "f": _fingerprint(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(token: str, filters: dict[str, Any]) -> list[Any] | None:
    """The key a token continues after, or None for an empty token (first page)."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidPageToken("page_token is malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        key, fingerprint = body["k"], body["f"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        # RecursionError: deeply nested JSON (a forged token), refused like any other.
        raise InvalidPageToken("page_token is malformed") from exc
    if fingerprint != _fingerprint(filters) or not isinstance(key, list):
        raise InvalidPageToken("page_token belongs to a query with other filters")
    return key
