"""RunResults (the SDK) against the real server: listing, paging, downloads byte for byte,
verification of size and SHA-256, names that must not escape the target directory.

The test acts as the worker: it leases the run, writes the files into the server's
artifact directory at runs/<run>/<attempt>/<name>, and completes the run with them.
Names a real server would refuse come from a stand-in RunService (`HostileServer`).
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import random
import threading

import grpc
import pytest

from batchyard.client import connection
from batchyard.client.core.results import (
    ResultIntegrityError,
    UnsafeResultNameError,
    check_names,
    name_parts,
)
from batchyard.client.errors import DeadlineExceededError, InvalidArgumentError, NotFoundError
from batchyard.client.sync.runs import RunsClient
from batchyard.v1 import job_pb2, result_pb2, run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as pb
from tests.client.acting import ActingWorker

ECHO = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="echo")
MISSING = "0b6f3c1e-8a43-4d1e-9a55-0c1d2e3f4a5b"
# More than one DownloadRunResult message (1 MiB each), not a multiple of it.
BIG = random.Random(5).randbytes(2 * 1024 * 1024 + 12345)
FILES = {
    "out/a.csv": b"id,name\n1,alpha\n2,beta\n",
    "big.bin": BIG,
    "empty.txt": b"",
    "deep/er/still/notes.txt": "héllo\n".encode(),
}


def result_of(name: str, data: bytes, attempt: int = 1) -> result_pb2.RunResult:
    """What a worker reports for a stored file."""
    return result_pb2.RunResult(
        name=name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        attempt=attempt,
    )


async def run_with_results(
    runs, worker, artifacts_dir, files, status=run_pb2.RUN_STATUS_SUCCEEDED
) -> str:
    """Submit an ad-hoc run and complete it as its worker, with `files` as its results
    (stored where the server reads them); the run's uuid."""
    run = (await runs.SubmitRun(pb.SubmitRunRequest(config=ECHO))).run
    leased = await worker.lease()
    for name, data in files.items():
        path = artifacts_dir / "runs" / leased.run / str(leased.attempt) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    results = [result_of(name, data, leased.attempt) for name, data in files.items()]
    fields = {"exit_code": 0} if status == run_pb2.RUN_STATUS_SUCCEEDED else {}
    if status == run_pb2.RUN_STATUS_FAILED:
        fields = {"exit_code": 1, "reason": run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE}
    await worker.complete(leased, status, results=results, **fields)
    return run.uuid


def stored_file(artifacts_dir, run_id, name, attempt=1):
    return artifacts_dir / "runs" / run_id / str(attempt) / name


def tree(root):
    """Every file below `root`, relative, with its bytes."""
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


@pytest.fixture
def client(target):
    with connection.channel(target, timeout=10) as ch:
        yield RunsClient(ch, timeout=10)


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


async def call(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


# ---------------------------------------------------------------- names, without a server


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../up.txt",
        "a/../../up.txt",
        "a/./b",
        "a//b",
        "a/",
        ".",
        "..",
        "a\\..\\b",
        "nul\x00byte",
        "x" * 256,
        "/".join(["d" * 200] * 6),
    ],
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(UnsafeResultNameError):
        name_parts(name)


def test_safe_names_split_into_parts():
    assert name_parts("out/a.csv") == ["out", "a.csv"]
    assert name_parts("..hidden/.x") == ["..hidden", ".x"]
    assert name_parts("é" * 127) == ["é" * 127]


def test_names_that_clash_are_refused():
    check_names(["a", "b/a", "b/c"])
    with pytest.raises(UnsafeResultNameError, match="inside it"):
        check_names(["a", "a/b"])
    with pytest.raises(UnsafeResultNameError, match="inside it"):
        check_names(["a/b/c", "a/b"])
    with pytest.raises(UnsafeResultNameError, match="that name"):
        check_names(["x", "x"])


# ---------------------------------------------------------------- the real server


async def test_results_are_listed_and_downloaded_byte_for_byte(
    client, runs, worker, artifacts_dir, tmp_path
):
    run_id = await run_with_results(runs, worker, artifacts_dir, FILES)
    results = await call(client.results, run_id)

    assert results.names == sorted(FILES)
    assert len(results) == 4 and results.total_bytes == sum(map(len, FILES.values()))
    assert "out/a.csv" in results and "nope" not in results
    csv = results["out/a.csv"]
    assert (csv.size_bytes, csv.sha256, csv.attempt) == (
        len(FILES["out/a.csv"]),
        hashlib.sha256(FILES["out/a.csv"]).hexdigest(),
        1,
    )
    assert csv.media_type == "text/csv"
    assert csv.HasField("create_time") and csv.download_url == ""
    assert results.get("nope") is None
    with pytest.raises(KeyError):
        results["nope"]
    assert [r.name for r in results] == results.names == [r.name for r in results[0:4]]
    assert "out/a.csv" in results._repr_html_()

    written = []
    paths = await call(
        results.download_files, tmp_path / "dl", on_file=lambda r, p: written.append(r.name)
    )
    assert paths == [tmp_path / "dl" / name for name in sorted(FILES)]
    assert written == sorted(FILES)
    assert tree(tmp_path / "dl") == FILES  # byte for byte, no temporary file left

    one = await call(results.download_file, tmp_path / "copy.csv", name="out/a.csv")
    assert one == tmp_path / "copy.csv" and one.read_bytes() == FILES["out/a.csv"]
    (tmp_path / "into").mkdir()
    into = await call(results.download_file, tmp_path / "into", name="deep/er/still/notes.txt")
    assert into == tmp_path / "into" / "notes.txt"
    assert into.read_bytes() == FILES["deep/er/still/notes.txt"]


async def test_results_follow_pages(client, runs, worker, artifacts_dir):
    files = {f"part-{i:02}.txt": f"part {i}\n".encode() for i in range(7)}
    run_id = await run_with_results(runs, worker, artifacts_dir, files)
    for page_size in (0, 1, 3, 7, 1000):
        results = await call(client.results, run_id, page_size=page_size)
        assert results.names == sorted(files), page_size


async def test_download_file_picks_the_only_result_or_needs_a_name(
    client, runs, worker, artifacts_dir, tmp_path
):
    single = await run_with_results(runs, worker, artifacts_dir, {"only.txt": b"just me\n"})
    results = await call(client.results, single)
    path = await call(results.download_file, tmp_path)
    assert path == tmp_path / "only.txt" and path.read_bytes() == b"just me\n"

    several = await call(client.results, await run_with_results(runs, worker, artifacts_dir, FILES))
    with pytest.raises(ValueError, match="name one"):
        await call(several.download_file, tmp_path / "x")
    with pytest.raises(NotFoundError, match="no result named 'nope'") as raised:
        await call(several.download_file, tmp_path / "x", name="nope")
    assert raised.value.reason == "RESULT_NOT_FOUND"
    assert not (tmp_path / "x").exists()


async def test_a_run_without_results(client, runs, worker, tmp_path):
    run_id = await run_with_results(runs, worker, None, {})
    results = await call(client.results, run_id)
    assert len(results) == 0 and list(results) == []
    assert await call(results.download_files, tmp_path / "dl") == []
    assert list((tmp_path / "dl").iterdir()) == []
    with pytest.raises(NotFoundError, match="has no results"):
        await call(results.download_file, tmp_path / "x")

    pending = (await runs.SubmitRun(pb.SubmitRunRequest(config=ECHO))).run.uuid
    assert len(await call(client.results, pending)) == 0


async def test_results_of_a_failed_run_are_listed(client, runs, worker, artifacts_dir, tmp_path):
    files = {"partial.txt": b"half done\n"}
    run_id = await run_with_results(runs, worker, artifacts_dir, files, run_pb2.RUN_STATUS_FAILED)
    results = await call(client.results, run_id)
    assert results.names == ["partial.txt"]
    assert (await call(results.download_file, tmp_path)).read_bytes() == b"half done\n"


async def test_unknown_or_malformed_run(client):
    with pytest.raises(NotFoundError):
        await call(client.results, MISSING)
    with pytest.raises(InvalidArgumentError):
        await call(client.results, "not-a-uuid")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda data: bytes([data[0] ^ 0xFF]) + data[1:], "its SHA-256 is"),  # same size
        (lambda data: data[:-1], "bytes arrived, the listing says"),
        (lambda data: data + b"more", "more than the"),
    ],
    ids=["bytes", "shorter", "longer"],
)
async def test_a_tampered_file_is_detected_and_not_kept(
    client, runs, worker, artifacts_dir, tmp_path, tamper, message
):
    run_id = await run_with_results(runs, worker, artifacts_dir, FILES)
    stored = stored_file(artifacts_dir, run_id, "big.bin")
    stored.write_bytes(tamper(BIG))
    results = await call(client.results, run_id)

    mine = tmp_path / "mine"
    mine.mkdir()
    target = mine / "big.bin"
    target.write_bytes(b"the old copy")
    with pytest.raises(ResultIntegrityError, match=message) as raised:
        await call(results.download_file, target, name="big.bin")
    assert raised.value.name == "big.bin" and raised.value.code == grpc.StatusCode.DATA_LOSS
    assert target.read_bytes() == b"the old copy"  # replaced only once verified
    assert os.listdir(mine) == ["big.bin"]  # no temporary file left

    dl = tmp_path / "dl"
    with pytest.raises(ResultIntegrityError):
        await call(results.download_files, dl)
    assert "big.bin" not in tree(dl)  # names before it in order were written, not it
    assert not [p for p in dl.rglob("*") if p.name.endswith(".batchyard-part")]


# ---------------------------------------------------------------- a server off contract


class HostileServer(run_service_pb2_grpc.RunServiceServicer):
    """Serves whatever listing and bytes a test sets, names included."""

    def __init__(self) -> None:
        self.listing: list[result_pb2.RunResult] = []
        self.data: dict[str, bytes] = {}
        self.served: dict[str, result_pb2.RunResult] = {}  # first-message metadata
        self.stall = asyncio.Event()
        self.stalling: set[str] = set()
        self.target = ""

    def serve(self, files: dict[str, bytes]) -> None:
        self.listing = [result_of(name, data) for name, data in files.items()]
        self.data = dict(files)

    async def ListRunResults(self, request, context):
        return pb.ListRunResultsResponse(results=self.listing)

    async def DownloadRunResult(self, request, context):
        meta = self.served.get(request.name) or next(
            r for r in self.listing if r.name == request.name
        )
        data = self.data[request.name]
        yield pb.DownloadRunResultResponse(result=meta, data=data[:10])
        if request.name in self.stalling:
            await self.stall.wait()
        for at in range(10, len(data), 1 << 20):
            yield pb.DownloadRunResultResponse(data=data[at : at + (1 << 20)])


@pytest.fixture
async def hostile():
    server = grpc.aio.server()
    servicer = HostileServer()  # type: ignore[abstract]  # only the results RPCs
    run_service_pb2_grpc.add_RunServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    servicer.target = f"127.0.0.1:{port}"
    yield servicer
    servicer.stall.set()
    await server.stop(0)


async def download_all(hostile, directory, idle_timeout=10.0):
    def go():
        with connection.channel(hostile.target, timeout=10) as ch:
            results = RunsClient(ch, timeout=10).results(MISSING)
            results.idle_timeout = idle_timeout
            return results.download_files(directory)

    return await asyncio.to_thread(go)


@pytest.mark.parametrize(
    "name",
    ["../escape.txt", "/tmp/absolute.txt", "ok/../../escape.txt", "a\\..\\escape.txt", "./x"],
)
async def test_hostile_names_never_escape_the_directory(hostile, tmp_path, name):
    hostile.serve({"fine.txt": b"fine\n", name: b"pwned\n"})
    inside = tmp_path / "a" / "b" / "dl"
    with pytest.raises(UnsafeResultNameError, match="refusing result name"):
        await download_all(hostile, inside)
    assert tree(tmp_path) == {}  # nothing at all was written, not even fine.txt


async def test_a_symlink_in_the_directory_leading_out_is_not_followed(hostile, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "link").symlink_to(outside)
    hostile.serve({"link/x/pwned.txt": b"pwned\n"})
    with pytest.raises(UnsafeResultNameError, match="leads outside"):
        await download_all(hostile, dl)
    assert list(outside.iterdir()) == []


async def test_clashing_names_write_nothing(hostile, tmp_path):
    hostile.serve({"a": b"file\n", "a/b": b"inside a file\n"})
    with pytest.raises(UnsafeResultNameError):
        await download_all(hostile, tmp_path / "dl")
    assert tree(tmp_path) == {}


async def test_a_result_that_changed_since_the_listing_is_refused(hostile, tmp_path):
    hostile.serve({"r.csv": b"old\n"})
    hostile.served["r.csv"] = result_of("r.csv", b"new!\n", attempt=2)
    with pytest.raises(ResultIntegrityError, match="changed since it was listed"):
        await download_all(hostile, tmp_path / "dl")
    assert tree(tmp_path) == {}


async def test_a_stalled_download_fails_after_the_idle_timeout(hostile, tmp_path):
    hostile.serve({"slow.bin": os.urandom(100_000)})
    hostile.stalling.add("slow.bin")
    with pytest.raises(DeadlineExceededError, match=r"no data for 0\.5 s"):
        await download_all(hostile, tmp_path / "dl", idle_timeout=0.5)
    assert tree(tmp_path) == {}
    assert not [t for t in threading.enumerate() if t.name == "download-idle"]
