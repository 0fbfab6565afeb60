"""Batchyard's Python SDK: define batch jobs, submit runs, wait for them, read their logs,
download their results — synchronously (`Client`) or with asyncio (`AsyncClient`).

    from batchyard.client import Client

    with Client() as client:                     # $BATCHYARD_SERVER, $BATCHYARD_TOKEN
        run = client.runs.submit("greet", args=["batchyard"], payload={"day": "monday"})
        run.wait()                               # 0:00:02 Run '…': running (attempt 1, 50%)
        run.results().download_files("out")

Everything named in `__all__` is the supported surface (tests/client/test_public_api.py
keeps it deliberate); the modules below it (`runs`, `logs`, `definitions`, ...) hold
the lower-level clients the command line is built on.
"""

from importlib.metadata import PackageNotFoundError, version

from batchyard.client.aio import AsyncClient
from batchyard.client.aio_results import AsyncRunResults
from batchyard.client.aio_run import AsyncRun
from batchyard.client.aio_streams import AsyncLogFollower
from batchyard.client.connection import ClientTls, TlsConfigError
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
    ResultNotFoundError,
    RunCancelledError,
    RunError,
    RunFailedError,
    RunNotFoundError,
    UnauthenticatedError,
    UnavailableError,
    VersionConflictError,
    WrongStateError,
)
from batchyard.client.logs import LogFollower
from batchyard.client.paging import AsyncPaged, Paged
from batchyard.client.results import ResultIntegrityError, RunResults, UnsafeResultNameError
from batchyard.client.retry import RetryPolicy
from batchyard.client.run import Run
from batchyard.client.runs import WaitTimeoutError
from batchyard.client.sdk import Client

try:
    __version__ = version("batchyard-client")
    """The installed version of batchyard-client."""
except PackageNotFoundError:  # pragma: no cover (running from a source tree)
    __version__ = "0+unknown"

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
