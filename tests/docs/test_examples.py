"""The example jobs and SDK scripts of client/examples run, as a user runs them, against the
real server and a real worker whose workspace is the examples folder; the Python blocks of
client/README.md are those scripts, word for word."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from batchyard.client.specs import load_definition
from tests.e2e.conftest import start_worker  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "client" / "examples"
README = ROOT / "client" / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(# (client/examples/\S+\.py)\n.*?)^```", re.M | re.S)
HEREDOC = re.compile(r"^cat > (\S+) <<'(\w+)'\n(.*?)^\2$", re.M | re.S)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """The worker's --workspace-root: a copy of client/examples (jobs/ inside)."""
    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLES, root)
    return root


async def run_example(name: str, target: str, *args: str, timeout: float = 120) -> str:
    """`python client/examples/NAME ARGS` as a user runs it: its output (it must exit 0)."""
    env = {**os.environ, "BATCHYARD_SERVER": target}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode()
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{text}"
    return text


def test_the_example_definitions_parse() -> None:
    names = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        definition, fields = load_definition(path)
        assert definition.name == path.stem
        assert fields == ["name", "description", "config"]
        names.append(definition.config.source_location)
    assert names == ["count.sql", "report.py", "slow.sh"]
    assert all((EXAMPLES / "jobs" / name).exists() for name in names)


def test_the_readme_python_blocks_are_the_example_scripts() -> None:
    blocks = PYTHON_BLOCK.findall(README.read_text())
    assert {path for _, path in blocks} >= {
        "client/examples/sdk_quickstart.py",
        "client/examples/sdk_async.py",
    }
    for text, path in blocks:
        script = (ROOT / path).read_text()
        assert text == f"# {path}\n" + script.split('"""\n', 1)[1].lstrip("\n"), path


def test_the_readme_tour_writes_the_example_jobs() -> None:
    written = {path: text for path, _, text in HEREDOC.findall(README.read_text())}
    assert set(written) == {
        "jobs/report.py",
        "report.yaml",
        "jobs/slow.sh",
        "slow.yaml",
        "jobs/count.sql",
        "count.yaml",
    }
    for path, text in written.items():
        assert text == (EXAMPLES / path).read_text(), path


async def test_the_sdk_examples_run_against_a_real_worker(
    target: str,
    start_worker,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    start_worker("--slots", "2")
    out_dir = tmp_path / "forecast"
    quick = await run_example("sdk_quickstart.py", target, str(out_dir))
    assert "Run '" in quick and "succeeded" in quick  # the progress lines of wait()
    assert (out_dir / "forecast.csv").read_text().splitlines() == [
        "day,city,rain_mm",
        "1,Oslo,3",
        "2,Oslo,6",
        "3,Oslo,2",
        "4,Oslo,5",
    ]
    assert "no weather data for Atlantis" in quick  # the log tail of the failed run
    assert "failed as expected: failed.run.attempts[-1].exit_code=1" in quick
    assert "tick 2 of 30" in quick and "is cancelled" in quick

    concurrent = await run_example("sdk_async.py", target)
    assert concurrent.count("succeeded: forecast.csv") == 3
    assert concurrent.count("AsyncRun(") == 3

    sql = await run_example("sdk_sql.py", target)
    assert sql.splitlines() == ["Bergen: 9 mm over 1 days", "Oslo: 9 mm over 2 days"]
