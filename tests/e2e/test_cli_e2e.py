"""The headline experience with a real worker: `batchyard runs submit NAME --wait --follow`
shows the log live, how the run ended and its results; a failed run exits 1 with why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.client.cli_runner import Cli

EXAMPLES = Path(__file__).resolve().parents[2] / "client" / "examples"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The worker's workspace: a copy of client/examples (jobs/ inside)."""
    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLES, root)
    return root


async def test_submit_wait_follow_ends_with_the_results(capsys, target, workspace, start_worker):
    start_worker()
    definitions = Cli(capsys, target, "definitions")
    code, out, _ = await definitions("create", "-f", str(workspace / "report.yaml"))
    assert code == 0 and "created definition report" in out

    runs = Cli(capsys, target, "runs", timeout_flag="--request-timeout")
    code, out, err = await runs(
        "submit", "report", "--arg", "6", "--payload", '{"city": "Oslo"}', "--wait", "--follow"
    )
    assert code == 0, out + err
    run_id = out.split()[2]
    lines = out.splitlines()
    assert any(line.endswith("stdout INFO    day 6 of 6: Oslo") for line in lines), out
    assert any("stderr WARNING more than 5 days" in line for line in lines), out
    assert f"run {run_id} succeeded" in lines
    at = lines.index(f"1 result, 71 B (batchyard results download {run_id}):")
    assert lines[at + 1].split() == ["NAME", "SIZE"]
    assert lines[at + 2].split() == ["forecast.csv", "71", "B"]
    assert f"Run {run_id}: succeeded" in err  # the state lines go to stderr

    results = Cli(capsys, target, "results")
    code, out, _ = await results("download", run_id, "-o", str(workspace / "out"))
    assert code == 0 and (workspace / "out" / "forecast.csv").read_text().count("Oslo") == 6


async def test_a_failed_run_exits_1_with_the_reason(capsys, target, workspace, start_worker):
    start_worker()
    await Cli(capsys, target, "definitions")("create", "-f", str(workspace / "report.yaml"))
    runs = Cli(capsys, target, "runs", timeout_flag="--request-timeout")
    code, out, _ = await runs(
        "submit", "report", "--payload", '{"city": "Atlantis"}', "--retries", "0", "--wait"
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[-2].endswith("failed: non-zero exit code")
    assert "exit code 1" in lines[-1] and "no weather data for Atlantis" in lines[-1]
    assert "result" not in lines[-1]
