"""Which workspace a call acts in: the one its token belongs to, never the request's."""

from __future__ import annotations

from typing import Any

import grpc

from batchyard.server.api.auth import current_principal
from batchyard.server.domain.access import Workspace

DEFAULT_WORKSPACE = "default"
"""The operator's workspace: created by the first migration; its admins manage workspaces."""


class WorkspaceResolver:
    async def of(self, context: grpc.aio.ServicerContext[Any, Any]) -> Workspace:
        """The caller's workspace (from its token, checked before the method ran)."""
        principal = current_principal()
        return Workspace(principal.workspace_id, principal.workspace)
