"""`batchyard results list|download` against the real server, the test acting as the
worker that stored the files (see test_results_client)."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
import yaml

from batchyard.client import connection
from batchyard.client.cli.main import main
from batchyard.client.cli.results import size_text
from batchyard.client.sync.runs import RunsClient
from batchyard.v1 import job_pb2, run_pb2
from batchyard.v1 import run_service_pb2 as pb
from tests.client.acting import ActingWorker
from tests.client.cli_runner import Cli
from tests.client.test_results_client import (
    BIG,
    ECHO,
    FILES,
    MISSING,
    hostile,  # noqa: F401  (a fixture)
    run_with_results,
    stored_file,
    tree,
)
from tests.e2e.conftest import start_worker, workspace  # noqa: F401  (fixtures)
from tests.e2e.jobs import wait_for


@pytest.fixture
def cli(capsys, target):
    return Cli(capsys, target, "results")


@pytest.fixture
def worker(workers):
    return ActingWorker(workers)


def test_sizes_read_well():
    assert [size_text(n) for n in (0, 1023, 1024, 1536, 5 * 2**20, 3 * 2**40)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 TiB",
    ]


def test_help_has_examples_and_says_what_o_means(capsys):
    for argv in (["results", "--help"], ["results", "list", "-h"], ["results", "download", "-h"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert "examples:\n  batchyard results" in out
    assert "-o DIR, --output-dir DIR" in out
    assert "not an output format" in out


async def test_list_as_table_json_and_yaml(cli, runs, worker, artifacts_dir):
    run_id = await run_with_results(runs, worker, artifacts_dir, FILES)
    code, out, err = await cli("list", run_id)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "MEDIA", "TYPE", "SHA-256", "ATTEMPT", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == sorted(FILES)
    big = lines[1].split()
    assert big[:6] == [
        "big.bin",
        "2.0",
        "MiB",
        "application/octet-stream",
        hashlib.sha256(BIG).hexdigest()[:12],
        "1",
    ]

    code, out, _ = await cli("list", run_id, "-o", "json")
    listed = json.loads(out)
    assert [r["name"] for r in listed] == sorted(FILES)
    assert listed[0]["sha256"] == hashlib.sha256(BIG).hexdigest()
    assert listed[0]["sizeBytes"] == str(len(BIG))
    code, out, _ = await cli("list", run_id, "-o", "yaml")
    assert yaml.safe_load(out) == listed


async def test_list_a_run_without_results_says_why(cli, runs, worker):
    finished = await run_with_results(runs, worker, None, {})
    code, out, err = await cli("list", finished)
    assert (code, out) == (0, "")
    assert err == f"run {finished} has no results (succeeded; its job wrote no files)\n"
    pending = (await runs.SubmitRun(pb.SubmitRunRequest(config=ECHO))).run.uuid
    code, out, err = await cli("list", pending, "-o", "json")
    assert (code, json.loads(out)) == (0, [])
    assert "no results yet (pending" in err and "when it ends" in err


async def test_unknown_run_exits_1(cli):
    for argv in (["list", MISSING], ["download", MISSING]):
        code, out, err = await cli(*argv)
        assert (code, out) == (1, "")
        assert err.startswith("error: ") and MISSING in err and "not found" in err.lower()


async def test_download_all_byte_for_byte(cli, runs, worker, artifacts_dir, tmp_path):
    run_id = await run_with_results(runs, worker, artifacts_dir, FILES)
    dest = tmp_path / "dest" / "new"
    code, out, err = await cli("download", run_id, "-o", str(dest))
    assert code == 0, err
    assert out.splitlines() == [str(dest / name) for name in sorted(FILES)]
    total = size_text(sum(map(len, FILES.values())))
    assert err == (
        f"downloaded 4 results of run {run_id} ({total}) into {dest}; sizes and SHA-256 checked\n"
    )
    assert tree(dest) == FILES

    # Again, over the files there: each is replaced.
    (dest / "out" / "a.csv").write_bytes(b"stale")
    code, _, _ = await cli("download", run_id, "--output-dir", str(dest))
    assert code == 0 and tree(dest) == FILES


async def test_download_to_the_current_directory_by_default(
    cli, runs, worker, artifacts_dir, tmp_path, monkeypatch
):
    run_id = await run_with_results(runs, worker, artifacts_dir, {"r.txt": b"here\n"})
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, out, _ = await cli("download", run_id)
    assert (code, out) == (0, "r.txt\n")
    assert (here / "r.txt").read_bytes() == b"here\n"


async def test_download_one_by_name(cli, runs, worker, artifacts_dir, tmp_path):
    run_id = await run_with_results(runs, worker, artifacts_dir, FILES)
    code, out, err = await cli("download", run_id, "--name", "out/a.csv", "-o", str(tmp_path / "d"))
    assert (code, out) == (0, f"{tmp_path / 'd' / 'a.csv'}\n"), err
    assert tree(tmp_path / "d") == {"a.csv": FILES["out/a.csv"]}
    assert "downloaded 1 result of run" in err

    code, out, err = await cli("download", run_id, "--name", "nope", "-o", str(tmp_path / "e"))
    assert (code, out) == (1, "")
    assert "has no result named 'nope'" in err and "out/a.csv" in err


async def test_download_a_run_without_results(cli, runs, worker, tmp_path):
    run_id = await run_with_results(runs, worker, None, {})
    code, out, err = await cli("download", run_id, "-o", str(tmp_path / "d"))
    assert (code, out) == (0, "")
    assert "has no results" in err
    assert not (tmp_path / "d").exists()


async def test_a_tampered_file_exits_1_and_is_not_kept(cli, runs, worker, artifacts_dir, tmp_path):
    run_id = await run_with_results(runs, worker, artifacts_dir, FILES)
    stored = stored_file(artifacts_dir, run_id, "out/a.csv")
    stored.write_bytes(stored.read_bytes().replace(b"alpha", b"omega"))
    dest = tmp_path / "d"
    code, out, err = await cli("download", run_id, "-o", str(dest))
    assert code == 1
    assert "error: result 'out/a.csv' is corrupt: its SHA-256 is" in err
    # The files before it (by name) were written and printed; not it, nor those after.
    assert out.splitlines() == [
        str(dest / "big.bin"),
        str(dest / "deep/er/still/notes.txt"),
        str(dest / "empty.txt"),
    ]
    assert sorted(tree(dest)) == ["big.bin", "deep/er/still/notes.txt", "empty.txt"]


async def test_a_directory_that_cannot_be_written_exits_2(
    cli, runs, worker, artifacts_dir, tmp_path
):
    run_id = await run_with_results(runs, worker, artifacts_dir, {"r.txt": b"x"})
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, out, err = await cli("download", run_id, "-o", str(blocker))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: cannot write {blocker}")


async def test_hostile_names_exit_1_and_write_nothing(capsys, hostile, tmp_path):  # noqa: F811
    hostile.serve({"fine.txt": b"fine\n", "../../escape.txt": b"pwned\n"})
    cli = Cli(capsys, hostile.target, "results")
    dest = tmp_path / "a" / "b"
    code, out, err = await cli("download", MISSING, "-o", str(dest))
    assert (code, out) == (1, "")
    assert "refusing result name '../../escape.txt'" in err
    assert tree(tmp_path) == {}

    # One file by name into a directory: only its base name counts, still checked.
    code, out, err = await cli("download", MISSING, "--name", "../../escape.txt", "-o", str(dest))
    assert code == 1 and "refusing result name" in err
    assert tree(tmp_path) == {}


async def test_failed_run_results_are_downloadable(cli, runs, worker, artifacts_dir, tmp_path):
    files = {"debug/dump.txt": b"state at failure\n"}
    run_id = await run_with_results(runs, worker, artifacts_dir, files, run_pb2.RUN_STATUS_FAILED)
    code, out, _ = await cli("download", run_id, "-o", str(tmp_path))
    assert (code, out) == (0, f"{tmp_path / 'debug' / 'dump.txt'}\n")


# ---------------------------------------------------------------- a real worker

WRITER = """
set -e
mkdir -p "$BATCHYARD_OUTPUT_DIR/out/deep"
head -c 2500000 /dev/urandom > "$BATCHYARD_OUTPUT_DIR/out/deep/random.bin"
printf 'a,b\\n1,2\\n' > "$BATCHYARD_OUTPUT_DIR/table.csv"
cp "$BATCHYARD_OUTPUT_DIR/out/deep/random.bin" "$COPY"
"""


async def test_what_a_real_worker_stored_downloads_byte_for_byte(
    cli,
    runs,
    target,
    start_worker,  # noqa: F811
    tmp_path,
):
    start_worker()
    copy = tmp_path / "copy.bin"
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source_location="/bin/sh",
        args=["-c", WRITER],
        env={"COPY": str(copy)},
    )
    run = (await runs.SubmitRun(pb.SubmitRunRequest(config=config))).run
    final = await wait_for(runs, run.uuid, timeout=60)
    assert final.status == run_pb2.RUN_STATUS_SUCCEEDED, final
    expected = {"out/deep/random.bin": copy.read_bytes(), "table.csv": b"a,b\n1,2\n"}

    dest = tmp_path / "cli"
    code, out, err = await cli("download", run.uuid, "-o", str(dest))
    assert code == 0, err
    assert tree(dest) == expected
    code, out, _ = await cli("list", run.uuid)
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["out/deep/random.bin", "2.4"],
        ["table.csv", "8"],
    ]

    def sdk() -> bytes:
        with connection.channel(target, timeout=10) as ch:
            results = RunsClient(ch, timeout=10).results(run.uuid)
            assert results["table.csv"].media_type == "text/csv"
            return results.download_file(
                tmp_path / "sdk.bin", name="out/deep/random.bin"
            ).read_bytes()

    assert await asyncio.to_thread(sdk) == expected["out/deep/random.bin"]
