"""Every shell block of the README and the reference docs runs, as written, against a real
`batchyard dev` (fresh user, no configuration), in order — so the docs cannot rot.

A block is a fenced ```sh block. A block the reader should not paste here (installing, a
production server, a command that runs until Ctrl-C) is preceded by a line
``<!-- not run by the docs test: WHY -->`` saying why, and where it is tested instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_dev import wait_for_event
from tests.processes import free_port

# The blocks run in order against one `batchyard dev` (a later block uses what an earlier
# one made): pytest-xdist's `--dist loadscope` (pyproject.toml) keeps a module on one worker.

ROOT = Path(__file__).resolve().parents[2]
BATCHYARD = str(Path(sys.executable).parent / "batchyard")
DOCS = [
    "README.md",
    "protos/README.md",
    "client/README.md",
    "server/README.md",
    "worker/README.md",
    "deploy/README.md",
]
SKIP = re.compile(r"<!--\s*not run by the docs test:\s*(.+?)\s*-->")
FENCE = re.compile(r"^( *)```sh\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    text: str
    skip: str | None

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str) -> list[Block]:
    path = ROOT / doc
    if not path.exists():
        return []
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        line = text[: match.start()].count("\n") + 1
        body = textwrap.dedent(match[2])
        found.append(Block(doc, line, body, skip[1] if skip else None))
    return found


ALL = [b for doc in DOCS for b in blocks(doc)]


def test_the_docs_have_runnable_blocks() -> None:
    assert any(b.doc == "README.md" and b.skip is None for b in ALL)
    for block in ALL:
        assert block.skip is None or len(block.skip) > 10, f"{block}: say why it is not run"


@dataclass
class Sandbox:
    home: Path
    project: Path
    env: dict[str, str]
    port: int
    http_port: int = 0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A new user (own HOME) in a project folder, with `batchyard dev` running there."""
    home = Path(tempfile.mkdtemp(prefix="batchyard-docs-"))
    project = home / "project"
    project.mkdir()
    (project / ".venv").symlink_to(ROOT / ".venv")  # what `uv run` made in a clone
    port, http_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BATCHYARD_", "DATABASE_URL", "XDG_", "AWS_"))
    }
    env.update(
        HOME=str(home),
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        BATCHYARD_LOG_FORMAT="json",
        BATCHYARD_SERVER=f"127.0.0.1:{port}",  # where the docs say localhost:50051
        BATCHYARD_HTTP_LISTEN=f"127.0.0.1:{http_port}",  # where they say 127.0.0.1:8080
    )
    log = home / "dev.log"
    with log.open("ab") as out:
        dev = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "batchyard"),
                "dev",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=project,
        )
    try:
        wait_for_event(log, "worker_started", dev, timeout=120)
        wait_for_event(log, "dev_token_ready", dev, timeout=60)
        yield Sandbox(home, project, env, port, http_port)
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("block", [b for b in ALL if b.skip is None], ids=str)
def test_block_runs(block: Block, sandbox: Sandbox) -> None:
    script = block.text.replace("50051", str(sandbox.port)).replace("localhost:", "127.0.0.1:")
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{sandbox.http_port}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=sandbox.project,
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, (
        f"{block} failed:\n{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
