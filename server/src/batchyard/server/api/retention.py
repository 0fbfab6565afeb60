"""RetentionService: the workspace's retention policy, definitions' overrides, and
DeleteRuns (bulk deletion of finished runs by filter, or a dry-run count)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import grpc

from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import current_principal
from batchyard.server.api.job_convert import seconds, timestamp
from batchyard.server.api.run_convert import status_from_pb
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db import definitions as definition_store
from batchyard.server.db import retention as store
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.pool import Pool
from batchyard.server.db.schedules import database_now
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.definitions import is_uuid_ref
from batchyard.server.domain.errors import DefinitionNotFound, FieldViolation, InvalidArgument
from batchyard.server.domain.retention import FINISHED, Policy, policy_violations
from batchyard.v1 import retention_service_pb2 as pb
from batchyard.v1 import retention_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
Purge = Callable[[list[UUID]], Awaitable[store.Deleted]]


def policy_from_pb(p: pb.RetentionPolicy) -> Policy:
    return Policy(
        keep_seconds=seconds(p.keep_for) if p.HasField("keep_for") else None,
        keep_succeeded=p.keep_succeeded if p.HasField("keep_succeeded") else None,
        keep_failed=p.keep_failed if p.HasField("keep_failed") else None,
        audit_keep_seconds=seconds(p.audit_keep_for) if p.HasField("audit_keep_for") else None,
    )


def policy_to_pb(p: Policy) -> pb.RetentionPolicy:
    out = pb.RetentionPolicy()
    if p.keep_seconds is not None:
        out.keep_for.FromTimedelta(timedelta(seconds=p.keep_seconds))
    if p.keep_succeeded is not None:
        out.keep_succeeded = p.keep_succeeded
    if p.keep_failed is not None:
        out.keep_failed = p.keep_failed
    if p.audit_keep_seconds is not None:
        out.audit_keep_for.FromTimedelta(timedelta(seconds=p.audit_keep_seconds))
    return out


class RetentionServicer(retention_service_pb2_grpc.RetentionServiceServicer):
    def __init__(
        self,
        pool: Pool,
        box: SecretBox,
        workspaces: WorkspaceResolver,
        purge: Purge,
        audit: AuditLog,
    ) -> None:
        self._pool = pool
        self._box = box
        self._workspaces = workspaces
        self._purge = purge
        self._audit = audit

    async def _definition(self, ws: Workspace, ref: str) -> UUID:
        return (await definition_store.get(self._pool, self._box, ws, ref)).uuid

    async def GetRetentionPolicy(
        self, request: pb.GetRetentionPolicyRequest, context: Context
    ) -> pb.GetRetentionPolicyResponse:
        ws = await self._workspaces.of(context)
        base, overrides = await store.policies(self._pool, ws.id)
        reply = pb.GetRetentionPolicyResponse(workspace_policy=policy_to_pb(base))
        if request.definition:
            own = overrides.get(await self._definition(ws, request.definition), Policy())
            reply.definition_policy.CopyFrom(policy_to_pb(own))
            reply.effective_policy.CopyFrom(policy_to_pb(own.over(base)))
        else:
            reply.effective_policy.CopyFrom(policy_to_pb(base))
        return reply

    async def SetRetentionPolicy(
        self, request: pb.SetRetentionPolicyRequest, context: Context
    ) -> pb.SetRetentionPolicyResponse:
        ws = await self._workspaces.of(context)
        policy = policy_from_pb(request.policy)
        violations = policy_violations(policy, for_definition=bool(request.definition))
        if violations:
            raise InvalidArgument(violations)
        definition = await self._definition(ws, request.definition) if request.definition else None
        await store.put_policy(self._pool, ws, definition, policy)
        what = f"definition {definition}" if definition else "workspace"
        self._audit.record(current_principal(), "retention.set", "retention", what)
        return pb.SetRetentionPolicyResponse(policy=policy_to_pb(policy))

    def _selection(self, request: pb.DeleteRunsRequest, now: Any) -> store.RunSelection:
        statuses = []
        for i, value in enumerate(request.statuses):
            status = status_from_pb(value)
            if status is None or status.value not in FINISHED:
                raise InvalidArgument(
                    [FieldViolation(f"statuses[{i}]", "SUCCEEDED, FAILED or CANCELLED")]
                )
            statuses.append(status.value)
        ref, schedule = request.definition, request.schedule
        if not (ref or schedule or request.statuses or request.HasField("older_than")):
            raise InvalidArgument([FieldViolation("older_than", "at least one filter is required")])
        if schedule and not is_uuid_ref(schedule):
            raise InvalidArgument([FieldViolation("schedule", "a schedule uuid")])
        older = seconds(request.older_than) if request.HasField("older_than") else 0.0
        if older < 0:
            raise InvalidArgument([FieldViolation("older_than", "must not be negative")])
        return store.RunSelection(
            statuses=tuple(sorted(set(statuses))) or FINISHED,
            definition_uuid=UUID(ref) if ref and is_uuid_ref(ref) else None,
            definition_name=ref if ref and not is_uuid_ref(ref) else None,
            schedule=UUID(schedule) if schedule else None,
            ended_before=now - timedelta(seconds=older),
        )

    async def DeleteRuns(
        self, request: pb.DeleteRunsRequest, context: Context
    ) -> pb.DeleteRunsResponse:
        ws = await self._workspaces.of(context)
        now = await database_now(self._pool)
        selection = self._selection(request, now)
        if request.definition and not await store.definition_known(
            self._pool, ws, request.definition
        ):
            raise DefinitionNotFound(request.definition)
        if request.dry_run:
            count = await store.count_matching(self._pool, ws, selection)
            return pb.DeleteRunsResponse(count=count, as_of=timestamp(now))
        deleted = 0
        while ids := await store.matching(self._pool, ws, selection):
            done = await self._purge(ids)
            deleted += done.runs
            if done.runs == 0:
                break  # the rest are held by another deleter right now
        detail = f"{deleted} runs"
        self._audit.record(current_principal(), "run.delete_many", "run", "filter", detail)
        return pb.DeleteRunsResponse(count=deleted, as_of=timestamp(now))
