"""An attempt's result files: what the job left in its output directory, stored.

:func:`store_results` lists ``BATCHYARD_OUTPUT_DIR`` (:func:`list_results`, in a worker
thread) and puts each file into the artifact store at ``runs/<run>/<attempt>/<name>``.
A result's name is its path relative to the output directory, "/"-separated; the rules are
the server's: valid UTF-8, no NUL or backslash, no empty, "." or ".." part, at most 1024
bytes, each part at most 255 bytes.

What is skipped, each with a WARNING system entry (at most :data:`MAX_NOTES` of them, then
one entry counting the rest):

* a symlink — any, even one pointing inside the directory — and anything that is not a
  regular file or a directory (a FIFO, a socket);
* a name that breaks the rules (a directory with a bad name is skipped whole);
* a file that would take the attempt past ``max_bytes`` in total; once ``max_files`` files
  are listed, the rest (one entry says so).

When the store fails, :class:`~batchyard.worker.results.artifacts.UploadError` ends the upload:
no result is reported, and what was stored already stays below the attempt's path until the
run is deleted (the server removes ``runs/<run>/`` whole).

The directory is walked without following a symlink anywhere: every directory and file is
opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a link swapped in after
the listing is refused, not followed. The walk is depth-first, each directory in name
order, and holds one directory open at a time.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import mimetypes
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from batchyard.config import Flag, Values, integer, size
from batchyard.worker.outcome import ResultFile
from batchyard.worker.results.artifacts import ArtifactStore, SourceChanged, UploadError, result_key

DEFAULT_RESULTS_MAX_BYTES = 5 * 1024**3
DEFAULT_RESULTS_MAX_FILES = 10_000
MAX_RESULTS_FILES = 10_000
"""The server takes at most this many results per attempt."""
MAX_NAME_BYTES = 1024
MAX_PART_BYTES = 255
MAX_NOTES = 100
"""Skipped files named one by one in the log; the rest are counted in one entry."""
OCTET_STREAM = "application/octet-stream"
_ENCODED = {  # mimetypes' "encoding" of a name like data.csv.gz is what the bytes are
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class ResultLimits:
    """Per-attempt caps on what is stored."""

    max_bytes: int = DEFAULT_RESULTS_MAX_BYTES
    max_files: int = DEFAULT_RESULTS_MAX_FILES

    @classmethod
    def from_values(cls, values: Values) -> ResultLimits:
        return cls(max_bytes=values[RESULTS_MAX_BYTES], max_files=values[RESULTS_MAX_FILES])


RESULTS_MAX_BYTES = Flag(
    "results-max-bytes",
    size(1),
    "result files stored per attempt, in bytes; a file past it is skipped",
    default=DEFAULT_RESULTS_MAX_BYTES,
)
RESULTS_MAX_FILES = Flag(
    "results-max-files",
    integer(1, MAX_RESULTS_FILES),
    f"result files stored per attempt, at most {MAX_RESULTS_FILES} (the server's limit)",
    default=DEFAULT_RESULTS_MAX_FILES,
)
FLAGS = (RESULTS_MAX_BYTES, RESULTS_MAX_FILES)


@dataclass(frozen=True)
class Listed:
    """A file to store."""

    name: str
    parts: tuple[str, ...]
    size: int
    media_type: str


@dataclass
class Listing:
    """The files to store and the notes about what was skipped."""

    limits: ResultLimits
    files: list[Listed] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0
    total: int = 0
    full: bool = False
    """Set once a file beyond ``max_files`` was found: the walk stops there."""

    def skip(self, shown: str, why: str) -> None:
        self.skipped += 1
        if self.skipped <= MAX_NOTES:
            self.notes.append(f"result {shown} skipped: {why}")

    def finish(self) -> None:
        if self.skipped > MAX_NOTES:
            self.notes.append(f"{self.skipped - MAX_NOTES} more result file(s) skipped")
        if self.full:
            self.notes.append(
                f"more than {self.limits.max_files} result files: only the first "
                f"{self.limits.max_files} (in name order) are stored"
            )


@dataclass(frozen=True)
class StoredResults:
    """What an attempt stored."""

    files: tuple[ResultFile, ...]
    bytes: int
    skipped: int


def has_output(directory: Path) -> bool:
    """Whether the output directory holds anything (on the event loop: three syscalls, the
    price of a trivial run's check)."""
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except OSError:  # missing; or not a directory, which the listing reports
        return os.path.lexists(directory)


async def store_results(
    store: ArtifactStore,
    directory: Path,
    *,
    run: str,
    attempt: int,
    limits: ResultLimits,
    note: Callable[[str], None],
) -> StoredResults:
    """Lists and stores the attempt's results; ``note`` gets a warning per skipped file.

    Raises :class:`~batchyard.worker.results.artifacts.UploadError` when the store fails.
    """
    listing = await asyncio.to_thread(list_results, directory, limits)
    for message in listing.notes:
        note(message)
    stored: list[ResultFile] = []
    skipped = listing.skipped
    for listed in listing.files:
        try:
            key = result_key(run, attempt, listed.name)
        except ValueError as exc:
            raise UploadError(str(exc)) from None
        opener = functools.partial(open_below, directory, listed.parts)
        try:
            done = await store.put(key, opener, size=listed.size, media_type=listed.media_type)
        except SourceChanged as exc:
            skipped += 1
            note(f"result {_shown(listed.name)} skipped: {exc}")
            continue
        stored.append(ResultFile(listed.name, done.size, done.sha256, listed.media_type))
    return StoredResults(tuple(stored), sum(f.size for f in stored), skipped)


def list_results(directory: Path, limits: ResultLimits) -> Listing:
    """The files below ``directory`` to store, in name order (blocking: call in a thread)."""
    listing = Listing(limits)
    try:
        root = os.open(directory, _DIRECTORY_FLAGS)
    except FileNotFoundError:
        return listing
    except OSError as exc:
        listing.notes.append(f"output directory not read: {_os_error(exc)}")
        return listing
    try:
        pending: list[tuple[tuple[str, ...], int | None]] = [((), None)]
        while pending and not listing.full:
            parts, size = pending.pop()
            if size is None:  # a directory
                pending.extend(reversed(_scan(root, parts, listing)))
            else:
                _add_file(listing, parts, size)
    finally:
        os.close(root)
    listing.finish()
    return listing


def _scan(
    root: int, parts: tuple[str, ...], listing: Listing
) -> list[tuple[tuple[str, ...], int | None]]:
    """One directory's files (with their sizes) and subdirectories (size None), in name
    order; what is skipped goes to ``listing``."""
    found: list[tuple[tuple[str, ...], int | None]] = []
    try:
        fd = _open_directory(root, parts)
    except OSError as exc:
        listing.skip(_shown("/".join(parts)) + " (a directory)", _os_error(exc))
        return found
    try:
        with os.scandir(fd) as scanned:
            entries = sorted(scanned, key=lambda entry: entry.name)
        for entry in entries:
            here = (*parts, entry.name)
            name = "/".join(here)
            try:
                if entry.is_symlink():
                    listing.skip(_shown(name), "a symlink (never followed)")
                elif entry.is_dir(follow_symlinks=False):
                    problem = _part_problem(entry.name)
                    if problem is None:
                        found.append((here, None))
                    else:
                        listing.skip(_shown(name) + " (a directory)", problem)
                elif entry.is_file(follow_symlinks=False):
                    found.append((here, entry.stat(follow_symlinks=False).st_size))
                else:
                    listing.skip(_shown(name), "not a regular file")
            except OSError as exc:  # removed meanwhile, or not readable
                listing.skip(_shown(name), _os_error(exc))
    finally:
        os.close(fd)
    return found


def _add_file(listing: Listing, parts: tuple[str, ...], size: int) -> None:
    name = "/".join(parts)
    problem = name_problem(name)
    if problem is not None:
        listing.skip(_shown(name), problem)
        return
    limits = listing.limits
    if len(listing.files) >= limits.max_files:
        listing.full = True
        return
    left = limits.max_bytes - listing.total
    if size > left:
        listing.skip(
            _shown(name),
            f"its {size} bytes would pass the limit of {limits.max_bytes} bytes of results per "
            f"attempt ({left} left)",
        )
        return
    listing.total += size
    listing.files.append(Listed(name, parts, size, media_type(name)))


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a result (None: it can)."""
    if not name:
        return "an empty name"
    if name.startswith("/"):
        return "an absolute name"
    if len(_utf8(name) or b"") > MAX_NAME_BYTES:
        return f"a name longer than {MAX_NAME_BYTES} bytes"
    for part in name.split("/"):
        problem = _part_problem(part)
        if problem is not None:
            return problem
    return None


def _part_problem(part: str) -> str | None:
    if part in ("", ".", ".."):
        return "an empty, '.' or '..' part in its name"
    if "\\" in part or "\x00" in part:
        return "a backslash or NUL in its name"
    encoded = _utf8(part)
    if encoded is None:
        return "a name that is not valid UTF-8"
    if len(encoded) > MAX_PART_BYTES:
        return f"a name part longer than {MAX_PART_BYTES} bytes"
    return None


def media_type(name: str) -> str:
    """The media type guessed from the name (application/octet-stream when unknown)."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODED.get(encoding, OCTET_STREAM)
    return guessed or OCTET_STREAM


def open_below(directory: Path, parts: tuple[str, ...]) -> BinaryIO:
    """Opens the regular file ``directory/parts`` for reading without following a symlink on
    the way; SourceChanged when it is no longer one."""
    try:
        root = os.open(directory, _DIRECTORY_FLAGS)
        try:
            parent = _open_directory(root, parts[:-1])
        finally:
            os.close(root)
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=parent)
        finally:
            os.close(parent)
    except OSError as exc:
        raise SourceChanged(f"cannot be opened: {_os_error(exc)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceChanged("is no longer a regular file")
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def _open_directory(root: int, parts: tuple[str, ...]) -> int:
    """A new descriptor of ``root/parts``, each part opened with O_NOFOLLOW."""
    fd = os.dup(root)
    for part in parts:
        try:
            below = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = below
    return fd


def _utf8(text: str) -> bytes | None:
    """The UTF-8 bytes of a name; None when the file system's bytes were not UTF-8."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # surrogate escapes of undecodable bytes
        return None


def _shown(name: str) -> str:
    """A name as log text (always valid UTF-8: undecodable bytes become U+FFFD)."""
    return repr(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def _os_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
        return "a symlink (never followed)"
    if exc.errno == errno.ENOTDIR:  # O_DIRECTORY | O_NOFOLLOW met a file or a symlink
        return "not a directory (a symlink is never followed)"
    return exc.strerror or str(exc)
