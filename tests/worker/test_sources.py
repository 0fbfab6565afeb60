"""Sources and programs: workspace, inline, commands, and paths that try to escape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.attempt import ExecutionOptions
from tests.worker.jobs import Result, python_job, run_job, shell_job, workspace_job


def assert_source_unavailable(result: Result, fragment: str, *, exec_failed: bool = False) -> None:
    """The attempt failed as SOURCE_UNAVAILABLE; the program never ran (or could not exec)."""
    assert result.outcome.status == run_pb2.RUN_STATUS_FAILED
    assert result.outcome.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE
    assert result.outcome.exit_code is None
    assert fragment in result.outcome.message
    started = any(line.startswith("starting") for line in result.sink.system())
    assert started is exec_failed


@pytest.fixture
def project(workspace: Path) -> Path:
    """A workspace project: etl/main.py importing a sibling module."""
    etl = workspace / "etl"
    etl.mkdir()
    (etl / "helper.py").write_text("VALUE = 'from helper'\n")
    (etl / "main.py").write_text("import sys, helper\nprint(helper.VALUE, sys.argv[1:])\n")
    return etl


async def test_workspace_script_runs_in_place_with_its_siblings(
    options: ExecutionOptions, project: Path
) -> None:
    config = workspace_job("etl", "main.py")
    config.args.append("--day=1")
    result = await run_job(config, options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert result.sink.lines_of("stdout") == ["from helper ['--day=1']"]


async def test_workspace_root_itself(options: ExecutionOptions, project: Path) -> None:
    result = await run_job(workspace_job("", "etl/main.py"), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED


@pytest.mark.parametrize(
    ("path", "location", "fragment"),
    [
        ("../outside", "main.py", "may not contain '..'"),
        ("etl/../../outside", "main.py", "may not contain '..'"),
        ("/tmp", "main.py", "must be a relative path"),
        ("etl", "../etl/main.py", "may not contain '..'"),
        ("etl", "/etc/passwd", "must be a relative path"),
        ("missing", "main.py", "does not exist"),
        ("etl", "missing.py", "does not exist"),
        ("etl", ".", "is not a file"),
    ],
)
async def test_bad_paths_are_refused(
    options: ExecutionOptions, project: Path, path: str, location: str, fragment: str
) -> None:
    result = await run_job(workspace_job(path, location), options)
    assert_source_unavailable(result, fragment)


async def test_symlinked_workspace_dir_out_of_the_root_is_refused(
    options: ExecutionOptions, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "main.py").write_text("print('escaped')\n")
    (workspace / "link").symlink_to(outside)
    result = await run_job(workspace_job("link", "main.py"), options)
    assert_source_unavailable(result, "leads outside its root")


async def test_symlinked_script_out_of_the_source_is_refused(
    options: ExecutionOptions, project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "evil.py"
    outside.write_text("print('escaped')\n")
    (project / "evil.py").symlink_to(outside)
    result = await run_job(workspace_job("etl", "evil.py"), options)
    assert_source_unavailable(result, "leads outside its root")
    assert "escaped" not in result.sink.lines_of("stdout")


async def test_symlink_inside_the_root_is_fine(options: ExecutionOptions, project: Path) -> None:
    (project / "alias.py").symlink_to(project / "main.py")
    result = await run_job(workspace_job("etl", "alias.py"), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED


async def test_inline_source_location_cannot_escape(options: ExecutionOptions) -> None:
    result = await run_job(python_job("print(1)", location="../../evil.py"), options)
    assert_source_unavailable(result, "may not contain '..'")


async def test_inline_source_with_custom_location(options: ExecutionOptions) -> None:
    result = await run_job(python_job("print('nested')", location="pkg/run.py"), options)
    assert result.sink.lines_of("stdout") == ["nested"]


async def test_sql_job_without_a_source_fails_cleanly(options: ExecutionOptions) -> None:
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SQL, sql_target=job_pb2.SqlTarget(connection="analytics")
    )
    result = await run_job(config, options)
    assert_source_unavailable(result, "a sql job needs a source")


async def test_unknown_command_fails_cleanly(options: ExecutionOptions) -> None:
    result = await run_job(shell_job("no-such-command-batchyard"), options)
    assert_source_unavailable(result, "not found on PATH")


async def test_relative_command_path_is_refused(options: ExecutionOptions) -> None:
    result = await run_job(shell_job("bin/tool"), options)
    assert_source_unavailable(result, "a name on PATH or an absolute path")


async def test_absolute_command_runs(options: ExecutionOptions) -> None:
    result = await run_job(shell_job("/bin/echo", "hi"), options)
    assert result.sink.lines_of("stdout") == ["hi"]


def shell_inline(text: str) -> job_pb2.JobConfig:
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text=text)),
        args=["a b"],
    )


async def test_inline_shell_script_without_shebang_runs_with_sh(options: ExecutionOptions) -> None:
    result = await run_job(shell_inline('echo "got: $1"\n'), options)
    assert result.sink.lines_of("stdout") == ["got: a b"]


async def test_inline_script_with_shebang_runs_its_interpreter(options: ExecutionOptions) -> None:
    text = f'#!{os.path.realpath("/bin/sh")}\necho "shebang: $1"\n'
    result = await run_job(shell_inline(text), options)
    assert result.sink.lines_of("stdout") == ["shebang: a b"]


async def test_non_executable_workspace_script_with_shebang_fails_cleanly(
    options: ExecutionOptions, workspace: Path
) -> None:
    (workspace / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (workspace / "run.sh").chmod(0o644)
    result = await run_job(workspace_job("", "run.sh", job_type=job_pb2.JOB_TYPE_SHELL), options)
    assert_source_unavailable(result, "cannot start 'run.sh': Permission denied", exec_failed=True)
