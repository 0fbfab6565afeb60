"""`RunResults`: a run's result assets, downloaded to disk verified (the synchronous face;
names, listing and checks in `batchyard.client.core.results`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import grpc

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.core.requests import list_results
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
from batchyard.client.sync.call import Caller
from batchyard.client.sync.paging import listing
from batchyard.v1 import run_service_pb2 as pb
from batchyard.v1 import run_service_pb2_grpc


class _IdleWatch:
    """Cancels a streaming call that has received nothing for `seconds`."""

    def __init__(self, call: grpc.CallIterator[pb.DownloadRunResultResponse], seconds: float):
        self._call = call
        self._seconds = seconds
        self._last = time.monotonic()
        self._done = threading.Event()
        self.fired = False
        self._thread = threading.Thread(target=self._watch, name="download-idle", daemon=True)
        self._thread.start()

    def touch(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while True:
            left = self._last + self._seconds - time.monotonic()
            if left <= 0:
                self.fired = True
                self._call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs
                return
            if self._done.wait(left):
                return


class RunResults(ResultListing[run_service_pb2_grpc.RunServiceStub]):
    """The result assets of a run, ordered by name (what `run.results()` returns).

    A sequence of RunResult messages (name, size_bytes, sha256, media_type, attempt,
    create_time, download_url on S3); `results["out/a.csv"]` looks one up by name.

        results = run.results()
        for result in results:
            print(result.name, result.size_bytes)
        results.download_files("out")            # every file, sub-directories kept
        results.download_file("report.csv", name="out/report.csv")

    Downloads raise a `batchyard.client.errors.BatchyardError` subclass when the server
    says no or cannot be reached, ResultIntegrityError when the bytes do not match the
    listing, UnsafeResultNameError for a name that is not a safe relative path, and
    OSError when the file cannot be written. A download fails with DeadlineExceededError
    when no data arrived for `idle_timeout` seconds (it has no overall deadline).
    """

    @classmethod
    def fetch(
        cls,
        stub: run_service_pb2_grpc.RunServiceStub,
        run_id: str,
        *,
        page_size: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
        call: Caller | None = None,
    ) -> RunResults:
        """Every result of the run, following page tokens (NotFoundError: no such run),
        each call through `call` (default: `timeout` seconds, no retry)."""
        call = call or Caller(timeout=timeout)
        spec = list_results(run_id)
        found = listing(call, stub.ListRunResults, spec, limit=None, page_size=page_size)
        return cls(stub, run_id, list(found), idle_timeout=call.timeout or timeout)

    def download_to(self, out: IO[bytes], name: str | None = None) -> RunResult:
        """Write one result's bytes to the binary file `out`, verified, and return it.

        `name` may be left out when the run has exactly one result. On a mismatch
        (ResultIntegrityError) `out` holds at most the listed size of unverified bytes.
        """
        download = ResultDownload(self.one(name))
        request = pb.DownloadRunResultRequest(run=self.run_id, name=download.result.name)
        call = self._stub.DownloadRunResult(request)
        watch = _IdleWatch(call, self.idle_timeout)
        try:
            for message in call:
                watch.touch()
                out.write(download.data(message))
        except grpc.RpcError as exc:
            if watch.fired:
                raise idle_error(self.idle_timeout, download.result.name) from None
            raise from_rpc_error(exc) from exc
        finally:
            watch.stop()
            call.cancel()  # type: ignore[no-untyped-call]  # a no-op once it has ended
        return download.finish()

    def download_file(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Download one result to `path` and return where it was written.

        `path` is a file path (its directory must exist), or an existing directory to
        write the file into under its own base name ("out/a.csv" → DIR/a.csv). `name`
        may be left out when the run has exactly one result (ValueError if it has
        several). An existing file at the target is replaced, only once the new one is
        complete and verified.
        """
        result = self.one(name)
        target = file_target(Path(path), result.name)
        self._download(result, target)
        return target

    def download_files(
        self,
        directory: str | os.PathLike[str],
        *,
        on_file: Callable[[RunResult, Path], None] | None = None,
    ) -> list[Path]:
        """Download every result below `directory` (created if missing), keeping the
        names' sub-directories ("out/a.csv" → DIRECTORY/out/a.csv); return the paths
        written, in the order of the results.

        Every name is checked before anything is written (UnsafeResultNameError).
        `on_file(result, path)` is called after each file is written. If one download
        fails, the files written before it stay, and the failed one leaves nothing.
        """
        check_names(self.names)
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        written = []
        for result in self:
            target = target_path(root, result.name)
            self._download(result, target)
            written.append(target)
            if on_file is not None:
                on_file(result, target)
        return written

    def _download(self, result: RunResult, target: Path) -> None:
        """Stream into a new hidden file next to `target`, then rename it into place."""
        partial, fd = partial_file(target)
        try:
            with os.fdopen(fd, "wb") as out:
                self.download_to(out, result.name)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
