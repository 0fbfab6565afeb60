"""Fixtures for the worker tests: a state dir, a workspace root, options, a reaper."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchyard.worker.execution.attempt import ExecutionOptions
from batchyard.worker.reaper.client import Reaper


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def options(tmp_path: Path, workspace: Path) -> ExecutionOptions:
    return ExecutionOptions(
        state_dir=tmp_path / "state",
        workspace_root=workspace,
        python=sys.executable,
        job_path=os.environ.get("PATH") or os.defpath,
        kill_grace=0.5,
        drain_timeout=2.0,
    )


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    handle = Reaper.start()
    try:
        yield handle
    finally:
        handle.close()
