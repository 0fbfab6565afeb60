"""Which database failures are transient (the caller may retry) or bad input, rather than
bugs."""

from __future__ import annotations

import asyncpg

_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,
    # 57xxx: the server is shutting down or restarting (admin or crash shutdown, cannot
    # connect now) — what a PostgreSQL restart answers to the sessions it ends.
    asyncpg.OperatorInterventionError,
    # The driver's protocol state broken by a connection cut mid-exchange ("cannot switch
    # to state 12" during a PostgreSQL restart): the call may be retried.
    asyncpg.InternalClientError,
    asyncpg.LockNotAvailableError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    ConnectionError,
    TimeoutError,
    # A PostgreSQL on a Unix socket that is stopped: its socket file is gone (ENOENT).
    FileNotFoundError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` means "the database could not answer now" (UNAVAILABLE)."""
    return isinstance(exc, _TRANSIENT)


def is_bad_value(exc: BaseException) -> bool:
    """Whether `exc` means "the database cannot take a value the caller sent" (SQLSTATE
    class 22: a number out of range, text with a NUL character, ...): INVALID_ARGUMENT."""
    return isinstance(exc, asyncpg.DataError)
