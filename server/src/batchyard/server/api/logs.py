"""LogService: a page of a run's log (GetLogs), and following it live (TailLogs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from batchyard.server.api.log_reading import LogFilter, Position, log_filter, position_of, read_page
from batchyard.server.api.run_convert import parse_run_id
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db import logs as store
from batchyard.server.db.pool import Pool
from batchyard.server.db.wakeups import Wakeups, run_key
from batchyard.server.domain import paging
from batchyard.server.domain.errors import RunNotFound
from batchyard.server.domain.runs import RunStatus
from batchyard.v1 import log_pb2, log_service_pb2_grpc
from batchyard.v1 import log_service_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
TAIL_BATCH = 1000
# A follower looks again this often without a wake-up (a missed NOTIFY costs this much).
POLL_SECONDS = 1.0


def _pos(position: Position) -> log_pb2.LogPosition:
    return log_pb2.LogPosition(attempt=position[0], seq=position[1])


class LogServicer(log_service_pb2_grpc.LogServiceServicer):
    def __init__(self, pool: Pool, workspaces: WorkspaceResolver, wakeups: Wakeups) -> None:
        self._pool = pool
        self._workspaces = workspaces
        self._wakeups = wakeups

    async def _status(self, context: Context, run: str) -> tuple[Any, RunStatus]:
        ws = await self._workspaces.of(context)
        run_id = parse_run_id(run)
        status = await store.run_status(self._pool, ws, run_id)
        if status is None:
            raise RunNotFound(run)
        return run_id, status

    async def GetLogs(self, request: pb.GetLogsRequest, context: Context) -> pb.GetLogsResponse:
        wanted = log_filter(request.attempt, request.min_level, list(request.streams))
        run_id, status = await self._status(context, request.run)
        size = paging.page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)
        fingerprint = {
            "r": request.run,
            "a": wanted.attempt,
            "l": wanted.min_level,
            "s": sorted(wanted.streams),
        }
        key = paging.decode(request.page_token, fingerprint)
        after = (int(key[0]), int(key[1])) if key else position_of(request.after, "after")
        page = await read_page(self._pool, run_id, after, wanted, size)
        token = paging.encode(list(page.position), fingerprint) if page.full else ""
        return pb.GetLogsResponse(
            entries=page.entries,
            next_page_token=token,
            last_position=_pos(page.position),
            run_finished=status.finished,
        )

    async def TailLogs(
        self, request: pb.TailLogsRequest, context: Context
    ) -> AsyncIterator[pb.TailLogsResponse]:
        wanted = log_filter(request.attempt, request.min_level, list(request.streams))
        run_id, _ = await self._status(context, request.run)
        position = position_of(request.after, "after")
        if request.only_new:
            position = await store.log_end(self._pool, run_id, wanted.attempt)
        ws = await self._workspaces.of(context)
        async for response in self._follow(ws, run_id, position, wanted):
            yield response

    async def _follow(
        self, ws: Any, run_id: Any, position: Position, wanted: LogFilter
    ) -> AsyncIterator[pb.TailLogsResponse]:
        """Send what is stored after `position`, then what arrives, until the run has
        ended and everything stored was sent."""
        while True:
            with self._wakeups.waiter([run_key(run_id)]) as woken:
                finished = await self._finished(ws, run_id)
                page = await read_page(self._pool, run_id, position, wanted, TAIL_BATCH)
                if page.entries or page.position != position:
                    position = page.position
                    yield pb.TailLogsResponse(entries=page.entries, position=_pos(position))
                if page.full:
                    continue
                if finished:  # read after the run ended: nothing can follow what we sent
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), POLL_SECONDS)

    async def _finished(self, ws: Any, run_id: Any) -> bool:
        status = await store.run_status(self._pool, ws, run_id)
        if status is None:
            raise RunNotFound(str(run_id))  # deleted while followed
        return status.finished
