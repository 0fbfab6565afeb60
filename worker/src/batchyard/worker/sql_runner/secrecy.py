"""Keeping the DSN secret: out of what the runner prints, and out of other processes' reach.

Standard library only: ``__main__`` hides the process before anything else is imported.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from urllib.parse import parse_qs, unquote, urlsplit

MASK = "***"
_PR_SET_DUMPABLE = 4


def hide_process_memory() -> None:
    """Makes the process non-dumpable: its ``/proc/<pid>/environ`` (which keeps showing the
    environment it started with, DSN included, after the variable is removed), ``mem`` and
    ptrace are then closed to other processes of the same user, such as other jobs on the
    worker. Root still sees everything."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def scrub(message: str, dsn: str) -> str:
    """``message`` with the DSN and its password (user info or ``?password=``) masked."""
    secrets = {dsn, *_passwords(dsn)}
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            message = message.replace(secret, MASK)
    return message


def _passwords(dsn: str) -> set[str]:
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return set()
    userinfo, at, _ = parts.netloc.rpartition("@")
    found = {userinfo.partition(":")[2]} if at else set()
    for value in parse_qs(parts.query).get("password", []):
        found.add(value)
    return found | {unquote(password) for password in found}
