"""Result assets: the listing (ListRunResults), the bytes (DownloadRunResult), the
conversion of what a worker reports (CompleteRun), and removal with a deleted run.

The listing lives in PostgreSQL; the bytes in the artifact store, where the worker put them
(:mod:`batchyard.server.artifacts`). On S3 every listed result carries a presigned URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import grpc
import structlog

from batchyard.server.api.job_convert import timestamp
from batchyard.server.api.run_convert import parse_run_id
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.artifacts import ArtifactMissing, ArtifactStore, object_path, run_prefix
from batchyard.server.db import results as store
from batchyard.server.db.pool import Pool
from batchyard.server.domain import paging
from batchyard.server.domain.errors import (
    DomainError,
    FieldViolation,
    InvalidArgument,
    ResultNotFound,
    Unavailable,
)
from batchyard.server.domain.results import Result, name_problem, validate_results
from batchyard.v1 import result_pb2
from batchyard.v1 import run_service_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 100
MAX_PAGE = 1000
log = structlog.get_logger("batchyard.server.results")


def results_from_pb(reported: Sequence[result_pb2.RunResult], attempt: int) -> list[Result]:
    """What a worker reported with CompleteRun, validated (INVALID_ARGUMENT otherwise)."""
    results = [
        Result(
            attempt=r.attempt,
            name=r.name,
            size_bytes=r.size_bytes,
            sha256=r.sha256,
            media_type=r.media_type,
        )
        for r in reported
    ]
    violations = validate_results(results, attempt)
    if violations:
        raise InvalidArgument(violations)
    return results


class ResultReader:
    """The read side of results for RunService; a service (lifecycle.py) whose `stop`
    waits for the removals of deleted runs' files."""

    name = "result-deleter"

    def __init__(self, pool: Pool, workspaces: WorkspaceResolver, artifacts: ArtifactStore) -> None:
        self._pool = pool
        self._workspaces = workspaces
        self._artifacts = artifacts
        self._deletions: set[asyncio.Task[None]] = set()

    async def _to_pb(self, run: UUID, result: Result) -> result_pb2.RunResult:
        out = result_pb2.RunResult(
            name=result.name,
            size_bytes=result.size_bytes,
            sha256=result.sha256,
            media_type=result.media_type,
            attempt=result.attempt,
            create_time=timestamp(result.created_at),
        )
        signed = await self._artifacts.presign(object_path(run, result.attempt, result.name))
        if signed is not None:
            out.download_url = signed[0]
            out.download_url_expire_time.FromDatetime(signed[1])
        return out

    async def list_page(
        self, request: pb.ListRunResultsRequest, context: Context
    ) -> pb.ListRunResultsResponse:
        ws = await self._workspaces.of(context)
        run_id = parse_run_id(request.run)
        size = paging.page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)
        fingerprint = {"r": str(run_id)}
        key = paging.decode(request.page_token, fingerprint)
        after = str(key[0]) if key else ""
        page = await store.list_page(self._pool, ws, run_id, after, size)
        token = paging.encode([page[-1].name], fingerprint) if len(page) == size else ""
        return pb.ListRunResultsResponse(
            results=[await self._to_pb(run_id, r) for r in page], next_page_token=token
        )

    async def download(
        self, request: pb.DownloadRunResultRequest, context: Context
    ) -> AsyncIterator[pb.DownloadRunResultResponse]:
        ws = await self._workspaces.of(context)
        run_id = parse_run_id(request.run)
        problem = name_problem(request.name)
        if problem is not None:
            raise InvalidArgument([FieldViolation("name", problem)])
        result = await store.get(self._pool, ws, run_id, request.name)
        chunks = self._artifacts.read(object_path(run_id, result.attempt, result.name))
        first = True
        try:
            async for chunk in chunks:
                if first:
                    first = False
                    yield pb.DownloadRunResultResponse(
                        result=await self._to_pb(run_id, result), data=chunk
                    )
                else:
                    yield pb.DownloadRunResultResponse(data=chunk)
        except ArtifactMissing:
            log.error("result_file_missing", run=str(run_id), name=result.name)
            raise ResultNotFound(str(run_id), result.name) from None
        except DomainError:
            raise
        except Exception as exc:  # the store is down or refuses: retryable
            log.error("artifact_store_failed", run=str(run_id), error=repr(exc))
            raise Unavailable("the artifact store is unavailable; retry") from None
        if first:  # an empty file: the metadata still comes
            yield pb.DownloadRunResultResponse(result=await self._to_pb(run_id, result))

    def forget(self, run: UUID) -> None:
        """Removes a deleted run's files from the artifact store, in the background (best
        effort: the listing is gone already, so nothing can name them any more)."""
        task = asyncio.create_task(self._delete(run))
        self._deletions.add(task)
        task.add_done_callback(self._deletions.discard)

    async def _delete(self, run: UUID) -> None:
        try:
            await self._artifacts.delete_prefix(run_prefix(run))
        except Exception as exc:  # the store is down: the files stay, the run is gone
            log.warning("result_files_not_deleted", run=str(run), error=repr(exc))

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """Waits (a while) for the removals under way, then closes the store."""
        if self._deletions:
            await asyncio.wait(self._deletions, timeout=10)
        await self._artifacts.aclose()
