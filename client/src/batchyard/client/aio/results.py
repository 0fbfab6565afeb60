"""A run's result files for the asyncio face: listed, and downloaded to disk verified
(the rules of `batchyard.client.core.results`: a temporary file renamed into place once
its size and SHA-256 match the listing; unsafe names refused before anything is
written)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from batchyard.client.core.results import (
    ResultDownload,
    ResultListing,
    RunResult,
    check_names,
    file_target,
    idle_error,
    partial_file,
    target_path,
)
from batchyard.client.errors import from_rpc_error
from batchyard.v1 import run_service_pb2 as pb
from batchyard.v1 import run_service_pb2_grpc  # noqa: F401 (its Async stub, quoted above: typing only)


class AsyncRunResults(ResultListing["run_service_pb2_grpc.RunServiceAsyncStub"]):
    """The result assets of a run, ordered by name, with async downloads (what
    `await run.results()` of the asyncio client returns).

        results = await run.results()
        await results.download_files("out")

    A download fails with DeadlineExceededError when no data arrived for
    `idle_timeout` seconds, ResultIntegrityError when the bytes do not match the listing.
    """

    async def download_to(self, fd: int, name: str | None = None) -> RunResult:
        """Write one result's bytes to the open file descriptor `fd`, verified."""
        download = ResultDownload(self.one(name))
        request = pb.DownloadRunResultRequest(run=self.run_id, name=download.result.name)
        call: Any = self._stub.DownloadRunResult(request)
        messages = aiter(call)
        try:
            while True:
                try:
                    message = await asyncio.wait_for(anext(messages), self.idle_timeout)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise idle_error(self.idle_timeout, download.result.name) from None
                _write_all(fd, download.data(message))
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc
        finally:
            call.cancel()
        return download.finish()

    async def download_file(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Download one result to `path` (a file, or an existing directory to write it
        into under its base name) and return where it was written; `name` may be left
        out when the run has exactly one result."""
        result = self.one(name)
        target = await asyncio.to_thread(file_target, Path(path), result.name)
        await self._download(result, target)
        return target

    async def download_files(
        self,
        directory: str | os.PathLike[str],
        *,
        on_file: Callable[[RunResult, Path], None] | None = None,
    ) -> list[Path]:
        """Download every result below `directory` (created if missing), keeping the
        names' sub-directories; return the paths written, in the order of the results."""
        check_names(self.names)
        root = Path(directory)
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        written = []
        for result in self:
            target = await asyncio.to_thread(target_path, root, result.name)
            await self._download(result, target)
            written.append(target)
            if on_file is not None:
                on_file(result, target)
        return written

    async def _download(self, result: RunResult, target: Path) -> None:
        partial, fd = partial_file(target)
        try:
            try:
                await self.download_to(fd, result.name)
                await asyncio.to_thread(os.fsync, fd)
            finally:
                os.close(fd)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
