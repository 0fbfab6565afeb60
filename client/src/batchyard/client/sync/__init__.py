"""The synchronous face of the SDK: `Client` and its parts, `Run`, `RunResults`,
`LogFollower`, `Paged` — requests from `batchyard.client.core`, made through one call
helper (`call.Caller`). It never imports the asyncio face (`batchyard.client.aio`)."""

from batchyard.client.sync.access import Audit, Tokens, Workspaces
from batchyard.client.sync.client import Client, Definitions, Runs
from batchyard.client.sync.fleet import Workers
from batchyard.client.sync.logs import LogsClient
from batchyard.client.sync.paging import Paged
from batchyard.client.sync.results import RunResults
from batchyard.client.sync.run import Run
from batchyard.client.sync.runs import RunsClient
from batchyard.client.sync.streams import LogFollower

__all__ = [
    "Audit",
    "Client",
    "Definitions",
    "LogFollower",
    "LogsClient",
    "Paged",
    "Run",
    "RunResults",
    "Runs",
    "RunsClient",
    "Tokens",
    "Workers",
    "Workspaces",
]
