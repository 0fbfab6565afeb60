"""The asyncio SDK with a real worker: follow a job's log live, wait for it, download its
results verified; a job that fails raises RunFailedError with the job's own error line.
(tests/docs/test_examples.py runs the synchronous SDK the same way.)"""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

import pytest

from batchyard.client import AsyncClient, RunFailedError, Status

EXAMPLES = Path(__file__).resolve().parents[2] / "client" / "examples"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The worker's workspace: a copy of client/examples (jobs/ inside)."""
    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLES, root)
    return root


async def test_follow_wait_and_download_with_asyncio(target, workspace, start_worker, tmp_path):
    start_worker()
    async with AsyncClient(target, timeout=10) as client:
        await client.definitions.create(workspace / "report.yaml")
        run = await client.runs.submit("report", args=["3"], payload={"city": "Bergen"})
        lines = [entry.message async for entry in run.follow(streams=["stdout"])]
        assert lines == [
            "day 1 of 3: Bergen",
            "day 2 of 3: Bergen",
            "day 3 of 3: Bergen",
            "wrote forecast.csv (3 days)",
        ]
        out = io.StringIO()
        assert await run.wait(timeout=30, out=out) is run
        assert out.getvalue().splitlines()[-1].endswith(": succeeded")
        assert run.progress == 100 and await run.status() == Status.SUCCEEDED

        results = await run.results()
        assert results.names == ["forecast.csv"]
        written = await results.download_files(tmp_path / "out")
        assert written == [tmp_path / "out" / "forecast.csv"]
        assert written[0].read_text().splitlines()[1:] == [
            "1,Bergen,3",
            "2,Bergen,6",
            "3,Bergen,2",
        ]
        single = await results.download_file(tmp_path)
        assert single == tmp_path / "forecast.csv"
        assert single.read_bytes() == written[0].read_bytes()

        failing = await client.runs.submit("report", payload={"city": "Atlantis"}, retries=0)
        with pytest.raises(RunFailedError) as raised:
            await asyncio.wait_for(failing.wait(show_progress=False), 30)
        assert raised.value.run.attempts[-1].exit_code == 1
        assert "no weather data for Atlantis" in [e.message for e in raised.value.log_tail]
