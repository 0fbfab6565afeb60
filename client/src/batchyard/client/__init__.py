"""Batchyard's Python SDK: define batch jobs, submit runs, wait for them, read their logs,
download their results — synchronously (`Client`) or with asyncio (`AsyncClient`).

    from batchyard.client import Client

    with Client() as client:                     # $BATCHYARD_SERVER, $BATCHYARD_TOKEN
        run = client.runs.submit("greet", args=["batchyard"], payload={"day": "monday"})
        run.wait()                               # 0:00:02 Run '…': running (attempt 1, 50%)
        run.results().download_files("out")

Everything named in `__all__` is the supported surface (tests/client/test_public_api.py
keeps it deliberate). The synchronous face lives in `batchyard.client.sync`, the asyncio
face in `batchyard.client.aio` (every name is imported when first used); both build their requests
with `batchyard.client.core`. The command line (`batchyard.client.cli`) uses `Client`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchyard.client.aio import (
        AsyncClient,
        AsyncLogFollower,
        AsyncPaged,
        AsyncRun,
        AsyncRunResults,
    )
    from batchyard.client.connection import ClientTls, TlsConfigError
    from batchyard.client.core.results import ResultIntegrityError, UnsafeResultNameError
    from batchyard.client.core.retry import RetryPolicy
    from batchyard.client.describe import Reason, Status
    from batchyard.client.display import ItemList
    from batchyard.client.errors import (
        AlreadyExistsError,
        BatchyardError,
        ConflictError,
        DeadlineExceededError,
        DefinitionExistsError,
        DefinitionNotFoundError,
        FailedPreconditionError,
        InvalidArgumentError,
        NotFoundError,
        PermissionDeniedError,
        QueueExistsError,
        QueueNotFoundError,
        ResultNotFoundError,
        RunCancelledError,
        RunError,
        RunFailedError,
        RunNotFoundError,
        UnauthenticatedError,
        UnavailableError,
        VersionConflictError,
        WaitTimeoutError,
        WrongStateError,
    )
    from batchyard.client.sync import Client, LogFollower, Paged, Run, RunResults

    __version__: str

# Every name is imported when first used, so that programs (and the command line, whose
# `--help` must not load grpc) pay only for what they use: name -> its module.
_HOMES = {
    **dict.fromkeys(
        ("AsyncClient", "AsyncLogFollower", "AsyncPaged", "AsyncRun", "AsyncRunResults"),
        "batchyard.client.aio",
    ),
    **dict.fromkeys(("ClientTls", "TlsConfigError"), "batchyard.client.connection"),
    **dict.fromkeys(
        ("ResultIntegrityError", "UnsafeResultNameError"), "batchyard.client.core.results"
    ),
    "RetryPolicy": "batchyard.client.core.retry",
    **dict.fromkeys(("Reason", "Status"), "batchyard.client.describe"),
    "ItemList": "batchyard.client.display",
    **dict.fromkeys(
        (
            "AlreadyExistsError",
            "BatchyardError",
            "ConflictError",
            "DeadlineExceededError",
            "DefinitionExistsError",
            "DefinitionNotFoundError",
            "FailedPreconditionError",
            "InvalidArgumentError",
            "NotFoundError",
            "PermissionDeniedError",
            "QueueExistsError",
            "QueueNotFoundError",
            "ResultNotFoundError",
            "RunCancelledError",
            "RunError",
            "RunFailedError",
            "RunNotFoundError",
            "UnauthenticatedError",
            "UnavailableError",
            "VersionConflictError",
            "WaitTimeoutError",
            "WrongStateError",
        ),
        "batchyard.client.errors",
    ),
    **dict.fromkeys(
        ("Client", "LogFollower", "Paged", "Run", "RunResults"), "batchyard.client.sync"
    ),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _installed_version()
    elif name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _installed_version() -> str:
    """The installed version of batchyard-client."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("batchyard-client")
    except PackageNotFoundError:  # pragma: no cover (running from a source tree)
        return "0+unknown"


__all__ = [
    "AlreadyExistsError",
    "AsyncClient",
    "AsyncLogFollower",
    "AsyncPaged",
    "AsyncRun",
    "AsyncRunResults",
    "BatchyardError",
    "Client",
    "ClientTls",
    "ConflictError",
    "DeadlineExceededError",
    "DefinitionExistsError",
    "DefinitionNotFoundError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "ItemList",
    "LogFollower",
    "NotFoundError",
    "Paged",
    "PermissionDeniedError",
    "QueueExistsError",
    "QueueNotFoundError",
    "Reason",
    "ResultIntegrityError",
    "ResultNotFoundError",
    "RetryPolicy",
    "Run",
    "RunCancelledError",
    "RunError",
    "RunFailedError",
    "RunNotFoundError",
    "RunResults",
    "Status",
    "TlsConfigError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnsafeResultNameError",
    "VersionConflictError",
    "WaitTimeoutError",
    "WrongStateError",
    "__version__",
]
