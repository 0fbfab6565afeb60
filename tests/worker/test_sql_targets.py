"""SQL targets: the worker's settings, how a job's target picks a DSN, the runner's command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from batchyard.v1 import job_pb2
from batchyard.worker.execution.command import build_command, job_environment
from batchyard.worker.execution.directories import AttemptPaths
from batchyard.worker.execution.sql_targets import DSN_VARIABLE, describe_target, target_dsn
from batchyard.worker.settings import SettingsError, add_arguments, settings_from_args
from batchyard.worker.sources.port import SourceError
from batchyard.worker.sql_runner import main as runner_main

SECRET = "postgresql://reporter:pa55-canary@db.example:5432/analytics?sslmode=require"
OTHER = "postgres://etl:other-canary@10.0.0.7/warehouse"


def parse(argv: list[str], env: dict[str, str] | None = None) -> dict[str, str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    environ = {"PATH": "/usr/bin:/bin", **(env or {})}
    settings = settings_from_args(parser.parse_args(argv), environ)
    assert "canary" not in repr(settings)
    assert "canary" not in repr(settings.execution)
    return dict(settings.execution.sql_targets)


def test_no_targets_by_default() -> None:
    assert parse([]) == {}


def test_targets_from_flags_and_environment_with_names_in_lower_case() -> None:
    env = {
        "BATCHYARD_SQL_TARGET_ANALYTICS": OTHER,
        "BATCHYARD_SQL_TARGET_Warehouse": OTHER,
        "BATCHYARD_SQL_TARGET_EMPTY": "",
    }
    targets = parse(["--sql-target", f"Analytics={SECRET}", "--sql-target", f"b.2-x={OTHER}"], env)
    assert targets == {"analytics": SECRET, "warehouse": OTHER, "b.2-x": OTHER}


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--sql-target", "analytics"], {}, "--sql-target: expected NAME=DSN"),
        ([f"--sql-target=-bad={SECRET}"], {}, "--sql-target: connection name '-bad'"),
        (["--sql-target", "a=mysql://u:pa55-canary@h/db"], {}, "--sql-target: the DSN must be"),
        (["--sql-target", "a=" + SECRET + "\n"], {}, "--sql-target: the DSN must be"),
        ([], {"BATCHYARD_SQL_TARGET_X": "pa55-canary"}, "BATCHYARD_SQL_TARGET_X: the DSN"),
        ([], {"BATCHYARD_SQL_TARGET_": SECRET}, "BATCHYARD_SQL_TARGET_: connection name ''"),
    ],
)
def test_bad_targets_name_their_origin_but_never_the_dsn(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(argv, env)
    assert str(caught.value).startswith(message)
    assert "canary" not in str(caught.value)


def by_connection(name: str) -> job_pb2.SqlTarget:
    return job_pb2.SqlTarget(connection=name)


def test_a_connection_name_picks_the_configured_dsn_whatever_its_case() -> None:
    configured = {"analytics": SECRET}
    assert target_dsn(by_connection("analytics"), configured) == SECRET
    assert target_dsn(by_connection("Analytics"), configured) == SECRET
    assert target_dsn(job_pb2.SqlTarget(dsn=OTHER), configured) == OTHER


@pytest.mark.parametrize(
    ("target", "configured", "message"),
    [
        (
            by_connection("nope"),
            {"b": SECRET, "a": OTHER},
            "sql target 'nope' is not configured on this worker (configured: a, b)",
        ),
        (by_connection("nope"), {}, "(configured: none)"),
        (job_pb2.SqlTarget(), {"a": SECRET}, "the sql job names no target"),
        (job_pb2.SqlTarget(has_dsn=True), {}, "the sql job's DSN was not handed to the worker"),
    ],
)
def test_a_missing_target_is_a_source_error_without_any_dsn(
    target: job_pb2.SqlTarget, configured: dict[str, str], message: str
) -> None:
    with pytest.raises(SourceError) as caught:
        target_dsn(target, configured)
    assert message in str(caught.value)
    assert "canary" not in str(caught.value)


def test_descriptions_show_no_dsn() -> None:
    assert describe_target(by_connection("analytics")) == "connection 'analytics'"
    assert describe_target(job_pb2.SqlTarget(dsn=SECRET)) == "a DSN secret"


def test_the_runner_reads_the_variable_the_worker_sets() -> None:
    assert runner_main.DSN_VARIABLE == DSN_VARIABLE


def test_the_runner_command_has_the_dsn_in_its_environment_only(tmp_path: Path) -> None:
    paths = AttemptPaths(tmp_path / "slots" / "1", has_payload=False)
    source = tmp_path / "source"
    (source / "sql").mkdir(parents=True)
    (source / "sql" / "q.sql").write_text("SELECT 1")
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SQL,
        source_location="sql/q.sql",
        env={"PGTZ": "UTC", "COLOR": "blue"},
        sql_target=by_connection("analytics"),
    )
    config.secret_env["TOKEN"] = "t"
    env = job_environment(config, run="run-1", attempt=1, paths=paths, path="/usr/bin")
    command = build_command(
        config,
        source.resolve(),
        env=env,
        paths=paths,
        python="/opt/other-venv/bin/python",  # PYTHON jobs' interpreter, not the runner's
        sql_targets={"analytics": SECRET},
    )
    assert command.argv == (
        sys.executable,
        "-I",
        "-m",
        "batchyard.worker.sql_runner",
        str((source / "sql" / "q.sql").resolve()),
    )
    assert command.env == {**env, DSN_VARIABLE: SECRET}
    assert command.env["COLOR"] == "blue" and command.env["TOKEN"] == "t"
    assert "canary" not in repr(command)


def test_a_sql_job_needs_a_source(tmp_path: Path) -> None:
    paths = AttemptPaths(tmp_path / "slots" / "1", has_payload=False)
    config = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SQL, sql_target=by_connection("a"))
    with pytest.raises(SourceError, match="a sql job needs a source"):
        build_command(config, None, env={}, paths=paths, python=sys.executable)
