"""Which database failures are a blip (UNAVAILABLE, retry) and which are not."""

from __future__ import annotations

import asyncpg
import pytest

from batchyard.server.db.errors import is_bad_value, is_transient


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation is running"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        ConnectionResetError(),
        TimeoutError(),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_restarting_database_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)
    assert not is_bad_value(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.UndefinedTableError("relation does not exist"),
        ValueError("a bug"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_bugs_and_conflicts_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)
