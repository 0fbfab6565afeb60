"""The asyncio face of the SDK: `AsyncClient` and its parts, `AsyncRun`,
`AsyncRunResults`, `AsyncLogFollower`, `AsyncPaged` — requests from
`batchyard.client.core`, made through one call helper (`call.AsyncCaller`). It never
imports the synchronous face (`batchyard.client.sync`)."""

from batchyard.client.aio.access import AsyncAudit, AsyncTokens, AsyncWorkspaces
from batchyard.client.aio.client import AsyncClient, AsyncDefinitions, AsyncRuns
from batchyard.client.aio.fleet import AsyncWorkers
from batchyard.client.aio.logs import AsyncLogsClient
from batchyard.client.aio.paging import AsyncPaged
from batchyard.client.aio.results import AsyncRunResults
from batchyard.client.aio.run import AsyncRun
from batchyard.client.aio.streams import AsyncLogFollower

__all__ = [
    "AsyncAudit",
    "AsyncClient",
    "AsyncDefinitions",
    "AsyncLogFollower",
    "AsyncLogsClient",
    "AsyncPaged",
    "AsyncRun",
    "AsyncRunResults",
    "AsyncRuns",
    "AsyncTokens",
    "AsyncWorkers",
    "AsyncWorkspaces",
]
