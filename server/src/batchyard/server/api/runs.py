"""RunService: submit (single and batch), read, list, cancel, delete."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import grpc

from batchyard.server.api import pipeline_submit
from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import current_principal
from batchyard.server.api.job_convert import config_from_pb
from batchyard.server.api.rerun import rerun
from batchyard.server.api.results import ResultReader
from batchyard.server.api.run_convert import (
    ConfigMemo,
    FreshRuns,
    overrides_from_pb,
    parse_run_id,
    run_to_pb,
    status_from_pb,
)
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db import pipelines
from batchyard.server.db import runs as store
from batchyard.server.db.definition_reader import DefinitionReader
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.pool import Pool
from batchyard.server.db.queue_guard import queue_checked
from batchyard.server.db.queues import KnownQueues, explain_waiting
from batchyard.server.db.run_batcher import SubmitBatcher
from batchyard.server.db.wakeups import Wakeups, cancel_key, queue_settings_key, run_key
from batchyard.server.domain import paging
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.definitions import Definition, is_uuid_ref
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.job_validation import validate_config
from batchyard.server.domain.jobs import JobConfig, Secrets
from batchyard.server.domain.runs import (
    MAX_BATCH,
    NewRun,
    apply_overrides,
    validate_payload_and_key,
)
from batchyard.server.domain.sql_targets import DatabaseIdentity, service_database_violations
from batchyard.v1 import run_service_pb2 as pb
from batchyard.v1 import run_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
MAX_CANCEL_REASON = 1000
# A watcher looks again this often without a wake-up (a missed NOTIFY costs this much).
WATCH_POLL_SECONDS = 1.0


MAX_CACHED_KEY_BYTES = 8 * 1024
"""A larger inline configuration (or overrides) is validated on every submit rather than
kept: the cache holds at most its size times this (and the shapes that go with it)."""


MAX_STATUS_FILTERS = 16
"""A status filter names each status at most once; a longer list is refused."""


class ShapeCache:
    """Effective configurations by what determines them: the definition's uuid and version
    (or the inline config) plus the overrides. Those inputs never change, so an entry never
    goes stale; the size only bounds memory (least recently used goes first)."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, _Shape] = OrderedDict()

    def get(self, key: bytes) -> _Shape | None:
        shape = self._entries.get(key)
        if shape is not None:
            self._entries.move_to_end(key)
        return shape

    def put(self, key: bytes, shape: _Shape) -> None:
        if len(key) > MAX_CACHED_KEY_BYTES:
            return
        self._entries[key] = shape
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


class _Submissions:
    """Prepares the submissions of one call: each definition is read once per call (a
    batch pins one version of it), each shape is prepared and validated once."""

    def __init__(
        self,
        reader: DefinitionReader,
        ws: Workspace,
        shapes: ShapeCache,
        service: DatabaseIdentity | None,
    ) -> None:
        self._reader, self._ws, self._shapes = reader, ws, shapes
        self._service = service
        self._definitions: dict[str, Definition] = {}
        self.queues: dict[str, str] = {}
        """Each queue the submissions name, and the field that first named it."""

    async def _definition(self, ref: str) -> Definition:
        if ref not in self._definitions:
            self._definitions[ref] = await self._reader.current(self._ws, ref)
        return self._definitions[ref]

    async def _shape(self, request: pb.SubmitRunRequest) -> _Shape:
        job = request.WhichOneof("job")
        overrides = request.overrides.SerializeToString(deterministic=True)
        definition: Definition | None = None
        if job == "definition":
            definition = await self._definition(request.definition)
            key = b"d" + definition.uuid.bytes + definition.version.to_bytes(8, "big")
        elif job == "config":
            key = b"c" + request.config.SerializeToString(deterministic=True)
        else:
            raise InvalidArgument(
                [FieldViolation("definition", "required: a definition or a config")]
            )
        key += b"\0" + overrides
        shape = self._shapes.get(key)
        if shape is None:
            shape = _prepare(request, definition, self._service)
            self._shapes.put(key, shape)
        return shape

    async def new_run(self, request: pb.SubmitRunRequest, prefix: str = "") -> NewRun:
        """Validate one submission; field paths are relative to the SubmitRunRequest
        (under `prefix`, e.g. "requests[3].")."""
        shape = await self._shape(request)
        violations = shape.violations + validate_payload_and_key(
            request.payload, request.request_id
        )
        if violations:
            raise InvalidArgument(violations)
        self.queues.setdefault(shape.config.queue, prefix + _queue_field(request))
        definition = shape.definition
        return NewRun(
            uuid=uuid.uuid4(),
            definition_uuid=definition.uuid if definition else None,
            definition_name=definition.draft.name if definition else "",
            definition_version=definition.version if definition else 0,
            config=shape.config,
            secrets=shape.secrets,
            payload=request.payload,
            request_id=request.request_id,
        )


def _prepare(
    request: pb.SubmitRunRequest, definition: Definition | None, service: DatabaseIdentity | None
) -> _Shape:
    if definition is not None:
        config, secrets = definition.draft.config, definition.draft.secrets
        config_path = "overrides"
    else:
        config, secrets = config_from_pb(request.config)
        config_path = "config"
    config, secrets = apply_overrides(config, secrets, overrides_from_pb(request.overrides))
    violations = [v.under(config_path) for v in validate_config(config, secrets)]
    violations += [
        v.under(config_path) for v in service_database_violations(config, secrets, service)
    ]
    return _Shape(definition, config, secrets, violations)


def _queue_field(request: pb.SubmitRunRequest) -> str:
    """The field of a submission that names its queue."""
    if request.overrides.queue:
        return "overrides.queue"
    return "config.queue" if request.WhichOneof("job") == "config" else "definition"


@dataclass(frozen=True)
class _Shape:
    definition: Definition | None
    config: JobConfig
    secrets: Secrets
    violations: list[FieldViolation]


def _time(ts: Any, field: str) -> datetime | None:
    if not ts.ByteSize():
        return None
    try:
        return ts.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]
    except (ValueError, OverflowError):
        raise InvalidArgument([FieldViolation(field, "not a valid time")]) from None


def _schedule_filter(ref: str) -> UUID | None:
    if not ref:
        return None
    if not is_uuid_ref(ref):
        raise InvalidArgument([FieldViolation("schedule", "a schedule uuid")])
    return UUID(ref)


class RunServicer(run_service_pb2_grpc.RunServiceServicer):
    def __init__(
        self,
        pool: Pool,
        box: SecretBox,
        workspaces: WorkspaceResolver,
        wakeups: Wakeups,
        batcher: SubmitBatcher,
        reader: DefinitionReader,
        results: ResultReader,
        audit: AuditLog,
        service: DatabaseIdentity | None = None,
    ) -> None:
        self._service = service
        self._audit = audit
        self._pool = pool
        self._box = box
        self._results = results
        self._workspaces = workspaces
        self._wakeups = wakeups
        self._batcher = batcher
        self._reader = reader
        self._shapes = ShapeCache()
        self._queues = KnownQueues()

    async def _submit(self, ws: Workspace, new_runs: list[NewRun]) -> list[store.Submitted]:
        submitted = await store.submit(self._pool, self._box, ws, new_runs)
        self._wakeups.poke({s.run.config.queue for s in submitted if not s.deduplicated})
        return submitted

    async def SubmitRun(
        self, request: pb.SubmitRunRequest, context: Context
    ) -> pb.SubmitRunResponse:
        ws = await self._workspaces.of(context)
        if request.WhichOneof("job") == "rerun_of":
            done = await self._batcher.submit(ws, await rerun(self._pool, self._box, ws, request))
        elif pipeline_submit.is_pipeline(request):
            submissions = _Submissions(self._reader, ws, self._shapes, self._service)
            entry = await pipeline_submit.single_entry(request, submissions.new_run)
            await self._queues.require(self._pool, ws, submissions.queues)
            async with queue_checked(next(iter(submissions.queues.values()), "")):
                [done] = await pipelines.submit(self._pool, self._box, ws, [entry])
        else:
            submissions = _Submissions(self._reader, ws, self._shapes, self._service)
            new_run = await submissions.new_run(request)
            await self._queues.require(self._pool, ws, submissions.queues)
            async with queue_checked(next(iter(submissions.queues.values()), "")):
                done = await self._batcher.submit(ws, new_run)
        if not done.deduplicated:
            self._wakeups.poke([done.run.config.queue])
            self._audit.record(current_principal(), "run.submit", "run", done.run.uuid)
        return pb.SubmitRunResponse(run=run_to_pb(done.run), deduplicated=done.deduplicated)

    async def BatchSubmitRuns(
        self, request: pb.BatchSubmitRunsRequest, context: Context
    ) -> pb.BatchSubmitRunsResponse:
        ws = await self._workspaces.of(context)
        if not 1 <= len(request.requests) <= MAX_BATCH:
            raise InvalidArgument([FieldViolation("requests", f"1 to {MAX_BATCH} requests")])
        submissions = _Submissions(self._reader, ws, self._shapes, self._service)
        if any(pipeline_submit.is_pipeline(r) for r in request.requests):
            return await self._submit_pipeline(ws, request, submissions)
        new_runs, violations = [], []
        for i, sub in enumerate(request.requests):
            try:
                new_runs.append(await submissions.new_run(sub, f"requests[{i}]."))
            except InvalidArgument as exc:
                violations += exc.under(f"requests[{i}]").violations
        if violations:
            raise InvalidArgument(violations)
        await self._queues.require(self._pool, ws, submissions.queues)
        async with queue_checked():
            submitted = await self._submit(ws, new_runs)
        fresh_count = sum(not s.deduplicated for s in submitted)
        if fresh_count:
            first = next(s.run.uuid for s in submitted if not s.deduplicated)
            detail = f"{fresh_count} runs in one batch (first {first})"
            self._audit.record(current_principal(), "run.submit", "run", first, detail)
        response = pb.BatchSubmitRunsResponse()
        fresh, configs = FreshRuns(), ConfigMemo()
        for done in submitted:
            item = response.responses.add(deduplicated=done.deduplicated)
            if done.deduplicated:
                item.run.CopyFrom(run_to_pb(done.run, configs))
            else:
                fresh.write(done.run, item.run)
        return response

    async def _submit_pipeline(
        self, ws: Workspace, request: pb.BatchSubmitRunsRequest, submissions: _Submissions
    ) -> pb.BatchSubmitRunsResponse:
        entries = await pipeline_submit.entries_of(list(request.requests), submissions.new_run)
        await self._queues.require(self._pool, ws, submissions.queues)
        async with queue_checked():
            submitted = await pipelines.submit(self._pool, self._box, ws, entries)
        fresh = [s.run.uuid for s in submitted if not s.deduplicated]
        if fresh:
            detail = f"{len(fresh)} runs in one pipeline (first {fresh[0]})"
            self._audit.record(current_principal(), "run.submit", "run", fresh[0], detail)
        configs = ConfigMemo()
        return pb.BatchSubmitRunsResponse(
            responses=[
                pb.SubmitRunResponse(run=run_to_pb(s.run, configs), deduplicated=s.deduplicated)
                for s in submitted
            ]
        )

    async def GetRun(self, request: pb.GetRunRequest, context: Context) -> pb.GetRunResponse:
        ws = await self._workspaces.of(context)
        run = await store.get(self._pool, self._box, ws, parse_run_id(request.run))
        [run] = await explain_waiting(self._pool, ws, [run])
        return pb.GetRunResponse(run=run_to_pb(run))

    async def ListRuns(self, request: pb.ListRunsRequest, context: Context) -> pb.ListRunsResponse:
        ws = await self._workspaces.of(context)
        size = paging.page_size(request.page_size)
        if len(request.statuses) > MAX_STATUS_FILTERS:
            raise InvalidArgument(
                [FieldViolation("statuses", f"at most {MAX_STATUS_FILTERS} statuses")]
            )
        statuses = []
        for i, value in enumerate(request.statuses):
            status = status_from_pb(value)
            if status is None:
                raise InvalidArgument([FieldViolation(f"statuses[{i}]", "unknown run status")])
            statuses.append(status)
        ref = request.definition
        filters = store.RunFilter(
            definition_uuid=UUID(ref) if ref and is_uuid_ref(ref) else None,
            definition_name=ref if ref and not is_uuid_ref(ref) else None,
            statuses=tuple(statuses),
            submitted_from=_time(request.submit_time_from, "submit_time_from"),
            submitted_to=_time(request.submit_time_to, "submit_time_to"),
            parent=parse_run_id(request.parent, "parent") if request.parent else None,
            include_children=request.include_children,
            schedule_uuid=_schedule_filter(request.schedule),
            queue=request.queue or None,
        )
        fingerprint: dict[str, object] = {
            "d": ref,
            "s": sorted(s.value for s in statuses),
            "f": request.submit_time_from.ToJsonString() if filters.submitted_from else "",
            "t": request.submit_time_to.ToJsonString() if filters.submitted_to else "",
            **({"sc": request.schedule} if request.schedule else {}),
            **({"q": request.queue} if request.queue else {}),
        }
        if request.parent or request.include_children:  # tokens without them stay valid
            fingerprint |= {"p": request.parent, "c": request.include_children}
        key = paging.decode(request.page_token, fingerprint)
        after = (datetime.fromisoformat(str(key[0])), UUID(str(key[1]))) if key else None
        page = await store.list_page(self._pool, self._box, ws, filters, after, size + 1)
        token = ""
        if len(page) > size:
            page = page[:size]
            token = paging.encode(
                [page[-1].submit_time.isoformat(), str(page[-1].uuid)], fingerprint
            )
        page = await explain_waiting(self._pool, ws, page)
        return pb.ListRunsResponse(runs=[run_to_pb(r) for r in page], next_page_token=token)

    async def CancelRun(
        self, request: pb.CancelRunRequest, context: Context
    ) -> pb.CancelRunResponse:
        ws = await self._workspaces.of(context)
        run_id = parse_run_id(request.run)
        if len(request.reason) > MAX_CANCEL_REASON:
            raise InvalidArgument([FieldViolation("reason", "at most 1000 characters")])
        message = f"cancelled by user: {request.reason}" if request.reason else "cancelled by user"
        await pipelines.cancel_run(self._pool, ws, run_id, message)
        self._wakeups.poke([run_key(run_id), cancel_key(run_id)])
        self._audit.record(current_principal(), "run.cancel", "run", run_id, request.reason)
        return pb.CancelRunResponse(
            run=run_to_pb(await store.get(self._pool, self._box, ws, run_id))
        )

    async def DeleteRun(
        self, request: pb.DeleteRunRequest, context: Context
    ) -> pb.DeleteRunResponse:
        ws = await self._workspaces.of(context)
        run_id = parse_run_id(request.run)
        if not await pipelines.delete_array(self._pool, ws, run_id):
            await store.delete(self._pool, ws, run_id)
        self._wakeups.poke([run_key(run_id)])
        self._results.forget(run_id)
        self._audit.record(current_principal(), "run.delete", "run", run_id)
        return pb.DeleteRunResponse()

    async def ListRunResults(
        self, request: pb.ListRunResultsRequest, context: Context
    ) -> pb.ListRunResultsResponse:
        return await self._results.list_page(request, context)

    async def DownloadRunResult(
        self, request: pb.DownloadRunResultRequest, context: Context
    ) -> AsyncIterator[pb.DownloadRunResultResponse]:
        async for response in self._results.download(request, context):
            yield response

    async def WatchRun(
        self, request: pb.WatchRunRequest, context: Context
    ) -> AsyncIterator[pb.WatchRunResponse]:
        """The run's state whenever it changes (its revision moves, or what holds it
        pending does: its queue is paused, resumed or fills up), until it ends."""
        ws = await self._workspaces.of(context)
        run_id = parse_run_id(request.run)
        if request.after_revision < 0:
            raise InvalidArgument([FieldViolation("after_revision", "must not be negative")])
        seen: tuple[int, object] = (request.after_revision, None)
        keys = [run_key(run_id)]
        while True:
            with self._wakeups.waiter(keys) as changed:
                run = await store.get(self._pool, self._box, ws, run_id)
                [run] = await explain_waiting(self._pool, ws, [run])
                cause = (run.reason, run.message)
                moved = run.revision > seen[0]
                if moved or (run.revision == seen[0] and seen[1] not in (None, cause)):
                    yield pb.WatchRunResponse(run=run_to_pb(run))
                seen = (run.revision, cause)
                if run.status.finished:
                    return
                keys = [run_key(run_id), queue_settings_key(run.config.queue)]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), WATCH_POLL_SECONDS)
