"""A run's result assets: list them, and download them to disk, verified.

The files a job writes under $BATCHYARD_OUTPUT_DIR become its run's results, named by
their path relative to that directory ("out/a.csv"). `RunsClient.results(run_id)` lists
them as a `RunResults`; its `download_file` and `download_files` stream the bytes to
disk (never a whole file in memory), through a temporary file renamed into place only
once its size and SHA-256 match the listing.

A name is written below the chosen directory only if it is a safe relative path: no
absolute path, no "", "." or ".." component, no backslash or NUL. A name that is not
(a server off contract) raises UnsafeResultNameError before anything is written.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, overload

import grpc

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.display import items_html
from batchyard.client.errors import (
    BatchyardError,
    DeadlineExceededError,
    ResultNotFoundError,
    from_rpc_error,
)
from batchyard.client.paging import paged
from batchyard.v1 import result_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as pb

RunResult = result_pb2.RunResult
ListRunResultsResponse = pb.ListRunResultsResponse

MAX_PAGE_SIZE = 1000
# The longest name, and name component, a server accepts (bytes of UTF-8).
MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255


class ResultIntegrityError(BatchyardError):
    """A downloaded result is not what the listing says (size or SHA-256), or changed
    since it was listed; the file was not written (DATA_LOSS).

    Attributes:
        name: the result's name.
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message, grpc.StatusCode.DATA_LOSS, "RESULT_INTEGRITY")
        self.name = name


class UnsafeResultNameError(BatchyardError):
    """A result's name is not a safe relative path (it would be written outside the
    target directory, or clashes with another name); nothing was written.

    Attributes:
        name: the offending name.
    """

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"refusing result name {name!r}: {why}", grpc.StatusCode.DATA_LOSS)
        self.name = name


def name_parts(name: str) -> list[str]:
    """The "/"-separated components of a result name, or UnsafeResultNameError if the
    name is not a safe relative path (the rules the server applies to names)."""
    if not name:
        raise UnsafeResultNameError(name, "empty")
    if "\x00" in name or "\\" in name:
        raise UnsafeResultNameError(name, "contains NUL or a backslash")
    if name.startswith("/"):
        raise UnsafeResultNameError(name, "absolute")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise UnsafeResultNameError(name, f"longer than {MAX_NAME_BYTES} bytes")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafeResultNameError(name, "has an empty, '.' or '..' component")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
            raise UnsafeResultNameError(name, f"a component is over {MAX_COMPONENT_BYTES} bytes")
    return parts


def check_names(names: Sequence[str]) -> None:
    """UnsafeResultNameError unless every name is safe and none is another's directory
    or a repeat (which would make one file overwrite or block another)."""
    files: set[str] = set()
    folders: set[str] = set()
    for name in names:
        parts = name_parts(name)
        if name in files:
            raise UnsafeResultNameError(name, "another result has that name")
        if name in folders:
            raise UnsafeResultNameError(name, "another result is inside it")
        files.add(name)
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = sorted(files & folders)
    if clash:
        raise UnsafeResultNameError(clash[0], "another result is inside it")


def target_path(directory: Path, name: str) -> Path:
    """Where `name` goes below `directory`, creating its sub-directories.

    Every directory on the way must stay inside `directory` once symlinks are resolved
    (a symlink already there that leads out is refused, and nothing is created there).
    """
    parts = name_parts(name)
    root = directory.resolve()
    current = directory
    for part in parts[:-1]:
        current = current / part
        if not current.exists() and not current.is_symlink():
            current.mkdir()
        if not current.resolve().is_relative_to(root):
            raise UnsafeResultNameError(name, f"{current} leads outside {directory}")
        if not current.is_dir():
            raise UnsafeResultNameError(name, f"{current} is not a directory")
    return current / parts[-1]


def list_page(
    stub: run_service_pb2_grpc.RunServiceStub,
    run_id: str,
    *,
    page_size: int = 0,
    page_token: str = "",
    timeout: float = DEFAULT_TIMEOUT,
) -> ListRunResultsResponse:
    """One page of the run's results, ordered by name (page_size 0: the server's default)."""
    request = pb.ListRunResultsRequest(run=run_id, page_size=page_size, page_token=page_token)
    try:
        return stub.ListRunResults(request, timeout=timeout)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from exc


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


class ResultListing(Sequence[RunResult]):
    """The result assets of a run, ordered by name: a sequence of RunResult messages
    (name, size_bytes, sha256, media_type, attempt, create_time, download_url on S3);
    `results["out/a.csv"]` looks one up by name. `RunResults` and `AsyncRunResults` add
    the downloads."""

    def __init__(self, run_id: str, results: Sequence[RunResult]) -> None:
        self.run_id = run_id
        self._results = list(results)
        self._by_name = {result.name: result for result in self._results}

    @overload
    def __getitem__(self, key: int) -> RunResult: ...
    @overload
    def __getitem__(self, key: str) -> RunResult: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[RunResult]: ...
    def __getitem__(self, key: int | str | slice) -> RunResult | Sequence[RunResult]:
        """The result at an index, the results of a slice, or the result of a name
        (KeyError if there is none)."""
        if isinstance(key, str):
            found = self._by_name.get(key)
            if found is None:
                raise KeyError(key)
            return found
        return self._results[key]

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[RunResult]:
        return iter(self._results)

    def __contains__(self, item: object) -> bool:
        """Whether a result (or a result of that name) is here."""
        if isinstance(item, str):
            return item in self._by_name
        return item in self._results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_id={self.run_id!r}, names={self.names!r})"

    @property
    def names(self) -> list[str]:
        """The results' names, in order."""
        return [result.name for result in self._results]

    @property
    def total_bytes(self) -> int:
        """The size of all results together."""
        return sum(result.size_bytes for result in self._results)

    def get(self, name: str) -> RunResult | None:
        """The result of that name, or None."""
        return self._by_name.get(name)

    def _repr_html_(self) -> str:
        """A table for Jupyter: name, size, media type, SHA-256, attempt."""
        return items_html(self, caption=f"results of run {self.run_id}")

    def one(self, name: str | None = None) -> RunResult:
        """The result of that name (NotFoundError if there is none), or without a name
        the run's only result (NotFoundError if it has none, ValueError if several)."""
        if name is not None:
            found = self._by_name.get(name)
            if found is not None:
                return found
            raise ResultNotFoundError(
                f"run {self.run_id} has no result named {name!r} "
                f"(its results: {self._some_names()})",
                grpc.StatusCode.NOT_FOUND,
                "RESULT_NOT_FOUND",
            )
        if len(self._results) == 1:
            return self._results[0]
        if not self._results:
            raise ResultNotFoundError(
                f"run {self.run_id} has no results", grpc.StatusCode.NOT_FOUND, "RESULT_NOT_FOUND"
            )
        raise ValueError(
            f"run {self.run_id} has {len(self._results)} results: name one ({self._some_names()})"
        )

    def _some_names(self, shown: int = 10) -> str:
        """'a, b, c', or the first `shown` and how many more; 'none'."""
        text = ", ".join(self.names[:shown]) or "none"
        if len(self._results) > shown:
            text += f", … ({len(self._results) - shown} more)"
        return text


class RunResults(ResultListing):
    """The result assets of a run, ordered by name (what `RunsClient.results` returns).

    A sequence of RunResult messages (name, size_bytes, sha256, media_type, attempt,
    create_time, download_url on S3); `results["out/a.csv"]` looks one up by name.

        results = runs.results(run_id)
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

    def __init__(
        self,
        stub: run_service_pb2_grpc.RunServiceStub,
        run_id: str,
        results: Sequence[RunResult],
        *,
        idle_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(run_id, results)
        self._stub = stub
        self.idle_timeout = idle_timeout

    @classmethod
    def fetch(
        cls,
        stub: run_service_pb2_grpc.RunServiceStub,
        run_id: str,
        *,
        page_size: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> RunResults:
        """Every result of the run, following page tokens (NotFoundError: no such run)."""
        found = paged(
            lambda size, token: list_page(
                stub, run_id, page_size=size, page_token=token, timeout=timeout
            ),
            lambda page: page.results,
            limit=None,
            page_size=page_size,
            max_page_size=MAX_PAGE_SIZE,
        )
        return cls(stub, run_id, list(found), idle_timeout=timeout)

    def download_to(self, out: IO[bytes], name: str | None = None) -> RunResult:
        """Write one result's bytes to the binary file `out`, verified, and return it.

        `name` may be left out when the run has exactly one result. On a mismatch
        (ResultIntegrityError) `out` holds at most the listed size of unverified bytes.
        """
        result = self.one(name)
        request = pb.DownloadRunResultRequest(run=self.run_id, name=result.name)
        call = self._stub.DownloadRunResult(request)
        watch = _IdleWatch(call, self.idle_timeout)
        digest = hashlib.sha256()
        size = 0
        try:
            for message in call:
                watch.touch()
                if message.HasField("result"):
                    _check_unchanged(result, message.result)
                size += len(message.data)
                if size > result.size_bytes:
                    raise ResultIntegrityError(
                        result.name,
                        f"result {result.name!r} is corrupt: the server sent more than "
                        f"the {result.size_bytes} bytes listed",
                    )
                digest.update(message.data)
                out.write(message.data)
        except grpc.RpcError as exc:
            if watch.fired:
                raise DeadlineExceededError(
                    f"no data for {self.idle_timeout:g} s while downloading {result.name!r}",
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ) from None
            raise from_rpc_error(exc) from exc
        finally:
            watch.stop()
            call.cancel()  # type: ignore[no-untyped-call]  # a no-op once it has ended
        _check_content(result, size, digest.hexdigest())
        return result

    def download_file(self, path: str | os.PathLike[str], name: str | None = None) -> Path:
        """Download one result to `path` and return where it was written.

        `path` is a file path (its directory must exist), or an existing directory to
        write the file into under its own base name ("out/a.csv" → DIR/a.csv). `name`
        may be left out when the run has exactly one result (ValueError if it has
        several). An existing file at the target is replaced, only once the new one is
        complete and verified.
        """
        result = self.one(name)
        target = Path(path)
        if target.is_dir():
            target = target / name_parts(result.name)[-1]
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
        for result in self._results:
            target = target_path(root, result.name)
            self._download(result, target)
            written.append(target)
            if on_file is not None:
                on_file(result, target)
        return written

    def _download(self, result: RunResult, target: Path) -> None:
        """Stream into a new hidden file next to `target`, then rename it into place."""
        partial = target.parent / f".{secrets.token_hex(8)}.batchyard-part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as out:
                self.download_to(out, result.name)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


def _check_unchanged(listed: RunResult, served: RunResult) -> None:
    """The metadata the download starts with must be what was listed."""
    if (served.name, served.size_bytes, served.sha256, served.attempt) == (
        listed.name,
        listed.size_bytes,
        listed.sha256,
        listed.attempt,
    ):
        return
    raise ResultIntegrityError(
        listed.name,
        f"result {listed.name!r} changed since it was listed (attempt {listed.attempt}, "
        f"{listed.size_bytes} bytes; now attempt {served.attempt}, {served.size_bytes} "
        "bytes): list the results again",
    )


def _check_content(result: RunResult, size: int, sha256: str) -> None:
    if size != result.size_bytes:
        raise ResultIntegrityError(
            result.name,
            f"result {result.name!r} is corrupt: {size} bytes arrived, the listing says "
            f"{result.size_bytes}",
        )
    if sha256 != result.sha256.lower():
        raise ResultIntegrityError(
            result.name,
            f"result {result.name!r} is corrupt: its SHA-256 is {sha256}, the listing "
            f"says {result.sha256}",
        )
