"""DefinitionService: create, read, list, update (with a mask, bumping the version), delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

import grpc

from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import current_principal
from batchyard.server.api.job_convert import (
    config_from_pb,
    config_to_pb,
    job_type_from_pb,
    timestamp,
)
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db import definitions as store
from batchyard.server.db import queues
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.pool import Pool
from batchyard.server.domain import paging
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.definitions import Definition, DefinitionDraft, apply_update, prepare
from batchyard.server.domain.errors import FieldViolation, InvalidArgument, QueueNotFound
from batchyard.server.domain.jobs import DEFAULT_QUEUE, with_defaults
from batchyard.server.domain.sql_targets import DatabaseIdentity, service_database_violations
from batchyard.v1 import definition_pb2, definition_service_pb2_grpc
from batchyard.v1 import definition_service_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]


def draft_from_pb(definition: definition_pb2.Definition) -> DefinitionDraft:
    config, secrets = config_from_pb(definition.config)
    return DefinitionDraft(definition.name, definition.description, config, secrets)


def definition_to_pb(definition: Definition) -> definition_pb2.Definition:
    draft = definition.draft
    return definition_pb2.Definition(
        uuid=str(definition.uuid),
        name=draft.name,
        workspace=definition.workspace,
        version=definition.version,
        description=draft.description,
        config=config_to_pb(draft.config, draft.secrets),
        create_time=timestamp(definition.create_time),
        update_time=timestamp(definition.update_time),
    )


def _require_ref(ref: str, field: str = "definition") -> str:
    if not ref:
        raise InvalidArgument([FieldViolation(field, "required: a definition name or uuid")])
    return ref


class DefinitionServicer(definition_service_pb2_grpc.DefinitionServiceServicer):
    def __init__(
        self,
        pool: Pool,
        box: SecretBox,
        workspaces: WorkspaceResolver,
        audit: AuditLog,
        service: DatabaseIdentity | None = None,
    ) -> None:
        self._service = service
        self._audit = audit
        self._pool = pool
        self._box = box
        self._workspaces = workspaces

    def _prepare(self, draft: DefinitionDraft) -> DefinitionDraft:
        """A valid draft whose SQL target is not the service's own database."""
        prepared = prepare(draft)
        refused = service_database_violations(prepared.config, prepared.secrets, self._service)
        if refused:
            raise InvalidArgument([v.under("config") for v in refused])
        return prepared

    def _prepare_queue(self, changes: DefinitionDraft) -> DefinitionDraft:
        return replace(changes, config=with_defaults(changes.config))

    async def _require_queue(self, ws: Workspace, draft: DefinitionDraft, field: str) -> None:
        """A definition names a queue that exists (QueueNotFound naming `field`)."""
        queue = draft.config.queue or DEFAULT_QUEUE
        if await queues.missing(self._pool, ws, [queue]):
            raise QueueNotFound(queue, field)

    async def CreateDefinition(
        self, request: pb.CreateDefinitionRequest, context: Context
    ) -> pb.CreateDefinitionResponse:
        ws = await self._workspaces.of(context)
        if not request.HasField("definition"):
            raise InvalidArgument([FieldViolation("definition", "required")])
        if not request.definition.HasField("config"):
            raise InvalidArgument([FieldViolation("definition.config", "required")])
        try:
            draft = self._prepare(draft_from_pb(request.definition))
        except InvalidArgument as exc:
            raise exc.under("definition") from None
        await self._require_queue(ws, draft, "definition.config.queue")
        created = await store.create(self._pool, self._box, ws, draft)
        self._audit.record(
            current_principal(), "definition.create", "definition", created.uuid, created.draft.name
        )
        return pb.CreateDefinitionResponse(definition=definition_to_pb(created))

    async def GetDefinition(
        self, request: pb.GetDefinitionRequest, context: Context
    ) -> pb.GetDefinitionResponse:
        ws = await self._workspaces.of(context)
        if request.version < 0:
            raise InvalidArgument([FieldViolation("version", "must not be negative")])
        ref = _require_ref(request.definition)
        found = await store.get(self._pool, self._box, ws, ref, request.version)
        return pb.GetDefinitionResponse(definition=definition_to_pb(found))

    async def ListDefinitions(
        self, request: pb.ListDefinitionsRequest, context: Context
    ) -> pb.ListDefinitionsResponse:
        ws = await self._workspaces.of(context)
        size = paging.page_size(request.page_size)
        job_type = job_type_from_pb(request.type)
        if request.type and job_type is None:
            raise InvalidArgument([FieldViolation("type", "unknown job type")])
        filters = {"prefix": request.name_prefix, "type": request.type}
        key = paging.decode(request.page_token, filters)
        after = (str(key[0]), UUID(str(key[1]))) if key else None
        page = await store.list_page(
            self._pool,
            self._box,
            ws,
            after=after,
            name_prefix=request.name_prefix,
            job_type=job_type,
            limit=size + 1,
        )
        token = ""
        if len(page) > size:
            page = page[:size]
            token = paging.encode([page[-1].draft.name, str(page[-1].uuid)], filters)
        return pb.ListDefinitionsResponse(
            definitions=[definition_to_pb(d) for d in page], next_page_token=token
        )

    async def UpdateDefinition(
        self, request: pb.UpdateDefinitionRequest, context: Context
    ) -> pb.UpdateDefinitionResponse:
        ws = await self._workspaces.of(context)
        ref = _require_ref(request.definition)
        paths = list(request.update_mask.paths)
        if request.expected_version < 0:
            raise InvalidArgument([FieldViolation("expected_version", "must not be negative")])
        changes = draft_from_pb(request.changes)

        def change(current: DefinitionDraft) -> DefinitionDraft:
            try:
                return self._prepare(apply_update(current, changes, paths))
            except InvalidArgument as exc:
                raise _blame(exc) from None

        if any(p in ("config", "config.queue") for p in paths):  # named: it must exist
            await self._require_queue(ws, self._prepare_queue(changes), "changes.config.queue")

        updated = await store.update(
            self._pool, self._box, ws, ref, change, request.expected_version
        )
        self._audit.record(
            current_principal(),
            "definition.update",
            "definition",
            updated.uuid,
            f"{updated.draft.name} version {updated.version}: {', '.join(paths)}",
        )
        return pb.UpdateDefinitionResponse(definition=definition_to_pb(updated))

    async def DeleteDefinition(
        self, request: pb.DeleteDefinitionRequest, context: Context
    ) -> pb.DeleteDefinitionResponse:
        ws = await self._workspaces.of(context)
        ref = _require_ref(request.definition)
        await store.delete(self._pool, ws, ref)
        self._audit.record(current_principal(), "definition.delete", "definition", ref)
        return pb.DeleteDefinitionResponse()


def _blame(exc: InvalidArgument) -> InvalidArgument:
    """Field paths of an update point into `changes`, except the mask itself."""
    return InvalidArgument(
        [v if v.field.startswith("update_mask") else v.under("changes") for v in exc.violations]
    )
