"""A run's result assets, the part both faces share: safe names, the listing, and the
checks every download passes (`ResultDownload`).

The files a job writes under $BATCHYARD_OUTPUT_DIR become its run's results, named by
their path relative to that directory ("out/a.csv"). A download streams the bytes to
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Generic, TypeVar, overload

import grpc

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.display import items_html
from batchyard.client.errors import BatchyardError, DeadlineExceededError, ResultNotFoundError
from batchyard.v1 import result_pb2
from batchyard.v1 import run_service_pb2 as pb

RunResult = result_pb2.RunResult
Stub = TypeVar("Stub")

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


class ResultListing(Sequence[RunResult], Generic[Stub]):
    """The result assets of a run, ordered by name: a sequence of RunResult messages
    (name, size_bytes, sha256, media_type, attempt, create_time, download_url on S3);
    `results["out/a.csv"]` looks one up by name. `RunResults` and `AsyncRunResults` add
    the downloads, made on `stub`; a download fails with DeadlineExceededError when no
    data arrived for `idle_timeout` seconds."""

    def __init__(
        self,
        stub: Stub,
        run_id: str,
        results: Sequence[RunResult],
        *,
        idle_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._stub = stub
        self.idle_timeout = idle_timeout
        """Seconds a download may go without data."""
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


def file_target(path: Path, name: str) -> Path:
    """`path`, or below it the name's base name when it is a directory."""
    return path / name_parts(name)[-1] if path.is_dir() else path


def partial_file(target: Path) -> tuple[Path, int]:
    """A new hidden file next to `target` to download into, and its descriptor."""
    partial = target.parent / f".{secrets.token_hex(8)}.batchyard-part"
    return partial, os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)


def idle_error(seconds: float, name: str) -> DeadlineExceededError:
    """What a download that received nothing for `seconds` fails with."""
    return DeadlineExceededError(
        f"no data for {seconds:g} s while downloading {name!r}",
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


class ResultDownload:
    """The bytes of one result as they arrive, checked against its listing: the
    metadata the stream starts with, never more bytes than listed, then (`finish`) the
    size and the SHA-256."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self._digest = hashlib.sha256()
        self._size = 0

    def data(self, message: pb.DownloadRunResultResponse) -> bytes:
        """The bytes of one message, to write (ResultIntegrityError if they do not fit)."""
        if message.HasField("result"):
            _check_unchanged(self.result, message.result)
        self._size += len(message.data)
        if self._size > self.result.size_bytes:
            raise ResultIntegrityError(
                self.result.name,
                f"result {self.result.name!r} is corrupt: the server sent more than "
                f"the {self.result.size_bytes} bytes listed",
            )
        self._digest.update(message.data)
        return message.data

    def finish(self) -> RunResult:
        """Every byte arrived: the size and the SHA-256 must be the listed ones."""
        _check_content(self.result, self._size, self._digest.hexdigest())
        return self.result


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
