"""Listing an attempt's result files on a real file system: names, symlinks, special files,
caps, and storing what is listed in a local directory."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from batchyard.worker.results.artifacts import LocalArtifactStore, SourceChanged
from batchyard.worker.results.store import (
    MAX_NOTES,
    ResultLimits,
    has_output,
    list_results,
    media_type,
    name_problem,
    open_below,
    store_results,
)


@pytest.fixture
def output(tmp_path: Path) -> Path:
    directory = tmp_path / "output"
    directory.mkdir()
    return directory


def write(root: Path, name: str, data: bytes) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_nested_files_are_listed_in_name_order_with_sizes_and_media_types(output: Path) -> None:
    write(output, "top.csv", b"a,b\n1,2\n")
    write(output, "deep/er/report.json", b"{}")
    write(output, "deep/empty.txt", b"")
    write(output, "b.bin", b"\x00" * 10)
    listing = list_results(output, ResultLimits())
    assert [(f.name, f.size, f.media_type) for f in listing.files] == [
        ("b.bin", 10, "application/octet-stream"),
        ("deep/empty.txt", 0, "text/plain"),
        ("deep/er/report.json", 2, "application/json"),
        ("top.csv", 8, "text/csv"),
    ]
    assert listing.notes == []
    assert listing.skipped == 0


def test_symlinks_are_skipped_wherever_they_point(output: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"not a result")
    write(output, "real.txt", b"real")
    (output / "inside.txt").symlink_to(output / "real.txt")
    (output / "outside.txt").symlink_to(secret)
    (output / "dir-link").symlink_to(tmp_path)
    (output / "dangling").symlink_to(tmp_path / "nothing-here")
    listing = list_results(output, ResultLimits())
    assert [f.name for f in listing.files] == ["real.txt"]
    assert listing.skipped == 4
    for name in ("inside.txt", "outside.txt", "dir-link", "dangling"):
        assert f"result {name!r} skipped: a symlink (never followed)" in listing.notes


def test_a_fifo_is_not_a_regular_file(output: Path) -> None:
    os.mkfifo(output / "pipe")
    write(output, "ok.txt", b"ok")
    listing = list_results(output, ResultLimits())  # returns: the FIFO is never opened
    assert [f.name for f in listing.files] == ["ok.txt"]
    assert listing.notes == ["result 'pipe' skipped: not a regular file"]


def test_bad_names_are_skipped_and_the_notes_stay_valid_utf8(output: Path) -> None:
    write(output, "back\\slash.txt", b"x")
    fd = os.open(os.fsencode(output) + b"/bad\xff.txt", os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    write(output, "bad\\dir/inner.txt", b"x")
    write(output, "good.txt", b"x")
    listing = list_results(output, ResultLimits())
    assert [f.name for f in listing.files] == ["good.txt"]
    assert sorted(listing.notes) == [
        "result 'back\\\\slash.txt' skipped: a backslash or NUL in its name",
        "result 'bad\\\\dir' (a directory) skipped: a backslash or NUL in its name",
        "result 'bad\ufffd.txt' skipped: a name that is not valid UTF-8",
    ]
    for note in listing.notes:
        note.encode("utf-8")  # the log service takes only valid UTF-8


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a.txt", None),
        ("dir/sub/a.txt", None),
        ("x" * 255, None),
        ("", "an empty name"),
        ("/etc/passwd", "an absolute name"),
        ("../up.txt", "an empty, '.' or '..' part in its name"),
        ("a/./b", "an empty, '.' or '..' part in its name"),
        ("a//b", "an empty, '.' or '..' part in its name"),
        ("a\x00b", "a backslash or NUL in its name"),
        ("x" * 256, "a name part longer than 255 bytes"),
        ("/".join(["x" * 200] * 6), "a name longer than 1024 bytes"),
        ("é" * 128, "a name part longer than 255 bytes"),  # 256 bytes in UTF-8
    ],
)
def test_name_rules(name: str, problem: str | None) -> None:
    assert name_problem(name) == problem


def test_a_long_path_is_skipped(output: Path) -> None:
    parts = ["d" * 200] * 5
    write(output, "/".join([*parts, "f" * 30]), b"deep")
    listing = list_results(output, ResultLimits())
    assert listing.files == []
    assert listing.notes[0].endswith("skipped: a name longer than 1024 bytes")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "text/csv"),
        ("dir/page.html", "text/html"),
        ("data.csv.gz", "application/gzip"),
        ("archive.tar.xz", "application/x-xz"),
        ("no-extension", "application/octet-stream"),
        ("image.png", "image/png"),
    ],
)
def test_media_types(name: str, expected: str) -> None:
    assert media_type(name) == expected


def test_the_byte_cap_skips_a_file_that_would_pass_it(output: Path) -> None:
    write(output, "a", b"x" * 10)
    write(output, "b", b"x" * 20)
    write(output, "c", b"x" * 5)
    listing = list_results(output, ResultLimits(max_bytes=25))
    assert [f.name for f in listing.files] == ["a", "c"]
    assert listing.notes == [
        "result 'b' skipped: its 20 bytes would pass the limit of 25 bytes of results per "
        "attempt (15 left)"
    ]


def test_the_file_cap_keeps_the_first_files_by_name(output: Path) -> None:
    for name in ("d/1", "a", "b", "c"):
        write(output, name, b"x")
    listing = list_results(output, ResultLimits(max_files=3))
    assert [f.name for f in listing.files] == ["a", "b", "c"]
    assert listing.notes == [
        "more than 3 result files: only the first 3 (in name order) are stored"
    ]


def test_notes_are_bounded(output: Path, tmp_path: Path) -> None:
    for i in range(MAX_NOTES + 5):
        (output / f"link-{i:03}").symlink_to(tmp_path)
    listing = list_results(output, ResultLimits())
    assert listing.skipped == MAX_NOTES + 5
    assert len(listing.notes) == MAX_NOTES + 1
    assert listing.notes[-1] == "5 more result file(s) skipped"


def test_an_unreadable_directory_is_skipped_with_a_note(output: Path) -> None:
    write(output, "locked/inner.txt", b"x")
    write(output, "open.txt", b"x")
    (output / "locked").chmod(0)
    try:
        if os.access(output / "locked", os.R_OK):
            pytest.skip("running as root: permissions do not stop reads")
        listing = list_results(output, ResultLimits())
    finally:
        (output / "locked").chmod(0o700)
    assert [f.name for f in listing.files] == ["open.txt"]
    assert listing.notes == ["result 'locked' (a directory) skipped: Permission denied"]


def test_empty_missing_and_replaced_output_directories(output: Path, tmp_path: Path) -> None:
    assert not has_output(output)
    assert list_results(output, ResultLimits()).files == []
    missing = tmp_path / "missing"
    assert not has_output(missing)
    assert list_results(missing, ResultLimits()).notes == []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(elsewhere, "secret.txt", b"x")
    link = tmp_path / "linked-output"
    link.symlink_to(elsewhere)
    assert has_output(link)
    listing = list_results(link, ResultLimits())
    assert listing.files == []
    assert listing.notes == [
        "output directory not read: not a directory (a symlink is never followed)"
    ]
    write(output, "a.txt", b"x")
    assert has_output(output)


def test_open_below_refuses_a_symlink_swapped_in_after_the_listing(
    output: Path, tmp_path: Path
) -> None:
    write(output, "dir/file.txt", b"listed")
    listing = list_results(output, ResultLimits())
    assert [f.name for f in listing.files] == ["dir/file.txt"]
    with open_below(output, ("dir", "file.txt")) as file:
        assert file.read() == b"listed"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(elsewhere, "file.txt", b"secret")
    (output / "dir" / "file.txt").unlink()
    (output / "dir").rmdir()
    (output / "dir").symlink_to(elsewhere)
    with pytest.raises(SourceChanged, match="a symlink"):
        open_below(output, ("dir", "file.txt"))


async def test_stored_files_are_byte_for_byte_with_their_sha256(
    output: Path, tmp_path: Path
) -> None:
    big = os.urandom(3 * 1024 * 1024 + 7)  # several copy chunks
    write(output, "big.bin", big)
    write(output, "sub/small.txt", b"hello\n")
    (output / "link").symlink_to(output / "big.bin")
    store = LocalArtifactStore(tmp_path / "artifacts")
    run = str(uuid.uuid4())
    notes: list[str] = []
    stored = await store_results(
        store, output, run=run, attempt=2, limits=ResultLimits(), note=notes.append
    )
    assert [(f.name, f.size, f.sha256, f.media_type) for f in stored.files] == [
        ("big.bin", len(big), hashlib.sha256(big).hexdigest(), "application/octet-stream"),
        ("sub/small.txt", 6, hashlib.sha256(b"hello\n").hexdigest(), "text/plain"),
    ]
    assert (stored.bytes, stored.skipped) == (len(big) + 6, 1)
    assert notes == ["result 'link' skipped: a symlink (never followed)"]
    base = tmp_path / "artifacts" / "runs" / run / "2"
    assert (base / "big.bin").read_bytes() == big
    assert (base / "sub" / "small.txt").read_bytes() == b"hello\n"
    assert sorted(p.name for p in base.rglob("*")) == ["big.bin", "small.txt", "sub"]
