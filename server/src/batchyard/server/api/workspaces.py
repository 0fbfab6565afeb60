"""Which workspace a call acts in. Until tokens land, every call uses `default`."""

from __future__ import annotations

from typing import Any

import grpc

from batchyard.server.db.definitions import Workspace, workspace_by_name
from batchyard.server.db.pool import Pool
from batchyard.server.domain.errors import Unavailable

DEFAULT_WORKSPACE = "default"


class WorkspaceResolver:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._default: Workspace | None = None

    async def of(self, context: grpc.aio.ServicerContext[Any, Any]) -> Workspace:
        """The caller's workspace (read from its credentials once authentication lands)."""
        if self._default is None:
            found = await workspace_by_name(self._pool, DEFAULT_WORKSPACE)
            if found is None:
                raise Unavailable(
                    "the default workspace is missing; run `batchyard server migrate`"
                )
            self._default = found
        return self._default
