"""Flags, BATCHYARD_* variables and defaults; the command-line registration."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

from batchyard.worker import cli
from batchyard.worker.execution.options import DEFAULT_KILL_GRACE
from batchyard.worker.results.artifacts import LocalArtifactStore, S3ArtifactStore
from batchyard.worker.results.location import ArtifactLocation
from batchyard.worker.results.store import ResultLimits
from batchyard.worker.settings import (
    SettingsError,
    WorkerSettings,
    add_arguments,
    settings_from_args,
)
from batchyard.worker.sources.git_clone import DEFAULT_GIT_TIMEOUT
from batchyard.worker.sources.s3 import S3Limits


def parse(argv: list[str], env: dict[str, str] | None = None) -> WorkerSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return settings_from_args(parser.parse_args(argv), env or {"PATH": "/usr/bin:/bin"})


def test_defaults() -> None:
    settings = parse([])
    assert settings.connection.server == "localhost:50051"
    assert settings.runner.slots == 4
    assert settings.runner.queues == ("default",)
    assert settings.execution.workspace_root == Path.cwd().resolve()
    assert settings.execution.kill_grace == DEFAULT_KILL_GRACE
    assert settings.execution.python == str(Path(sys.executable).absolute())
    assert settings.worker_id.endswith(f"-{os.getpid()}")
    assert settings.execution.worker_id == settings.worker_id
    assert settings.connection.token is None


def test_flags_win_over_environment(tmp_path: Path) -> None:
    env = {
        "BATCHYARD_SERVER": "env:1",
        "BATCHYARD_SLOTS": "2",
        "BATCHYARD_QUEUES": "a,b",
        "BATCHYARD_STATE_DIR": str(tmp_path / "env-state"),
        "BATCHYARD_TOKEN": "from-env",
        "PATH": "/usr/bin:/bin",
    }
    settings = parse(["--server", "flag:2", "--queues", " x , y,x "], env)
    assert settings.connection.server == "flag:2"
    assert settings.runner.queues == ("x", "y")
    assert settings.runner.slots == 2
    assert settings.state_dir == tmp_path / "env-state"
    assert settings.execution.state_dir == tmp_path / "env-state"
    assert settings.connection.token == "from-env"
    assert "from-env" not in repr(settings)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--slots", "0"], {}, "--slots: must be at least 1: 0"),
        (["--slots", "1001"], {}, "--slots: must be at most 1000: 1001"),
        ([], {"BATCHYARD_SLOTS": "many"}, "BATCHYARD_SLOTS: not a whole number: 'many'"),
        (["--queues", ", ,"], {}, "--queues: needs at least 1 item(s)"),
        (["--grace", "-1"], {}, "--grace: must be at least 0s: -1"),
        (["--grace", "soon"], {}, "--grace: not a duration: 'soon'"),
        (
            ["--workspace-root", "/no/such/dir"],
            {},
            "--workspace-root: '/no/such/dir' is not a directory",
        ),
        (["--python", "no-such-python-x"], {}, "--python: 'no-such-python-x' is not an executable"),
        (["--worker-id", "has space"], {}, "--worker-id: must be 1 to 200 printable ASCII"),
    ],
)
def test_bad_values_name_their_origin(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(argv, {"PATH": "/usr/bin:/bin", **env})
    assert message in str(caught.value)


def test_python_name_is_resolved_once_to_an_absolute_path() -> None:
    settings = parse(["--python", "sh"])
    assert Path(settings.execution.python).is_absolute()
    assert Path(settings.execution.python).name == "sh"


def test_register_adds_the_worker_command() -> None:
    parser = argparse.ArgumentParser(prog="batchyard")
    subparsers = parser.add_subparsers(dest="command")
    cli.register(subparsers)
    args = parser.parse_args(["worker", "--server", "h:1", "--slots", "3"])
    assert args.handler is cli.run_worker
    assert args.server == "h:1"


def test_bad_settings_exit_with_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--slots", "nope"]) == 2
    assert "--slots" in capsys.readouterr().err


def test_output_caps_and_log_shipping_have_defaults() -> None:
    settings = parse([])
    options = settings.execution
    assert (options.max_line_bytes, options.max_output_lines, options.max_output_bytes) == (
        16 * 1024,
        1_000_000,
        64 * 1024 * 1024,
    )
    assert options.worker_id == settings.worker_id
    shipping = settings.shipping
    assert shipping.spool_dir == settings.state_dir / "spool"
    assert shipping.flush_interval == 0.03
    assert shipping.max_memory_bytes == 16 * 1024 * 1024


def test_output_caps_from_flags_and_environment() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "BATCHYARD_MAX_OUTPUT_LINES": "5000",
        "BATCHYARD_MAX_OUTPUT_BYTES": "8MiB",
        "BATCHYARD_LOG_SPOOL_MEMORY": "1M",
    }
    settings = parse(
        ["--max-line-bytes", "4KiB", "--max-output-lines", "2_000", "--log-flush-interval", "0.1"],
        env,
    )
    assert settings.execution.max_line_bytes == 4096
    assert settings.execution.max_output_lines == 2000  # the flag wins
    assert settings.execution.max_output_bytes == 8 * 1024 * 1024
    shipping = settings.shipping
    assert (shipping.max_memory_bytes, shipping.flush_interval) == (1_000_000, 0.1)
    durations = parse(["--log-flush-interval", "250ms", "--grace", "5m", "--kill-grace", "90s"])
    assert durations.shipping.flush_interval == 0.25
    assert (durations.runner.grace, durations.execution.kill_grace) == (300.0, 90.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-output-lines", "0"], "--max-output-lines: must be at least 1: 0"),
        (["--max-output-bytes", "lots"], "--max-output-bytes: not a size: 'lots'"),
        (["--max-output-bytes", "12XB"], "--max-output-bytes: not a size: '12XB'"),
        (["--max-output-bytes", "inf"], "--max-output-bytes: not a size: 'inf'"),
        (["--max-output-bytes", "0.1"], "--max-output-bytes: not a whole number of bytes"),
        (["--max-output-bytes", "0"], "--max-output-bytes: must be at least 1: 0"),
        (["--max-line-bytes", "1MiB"], "--max-line-bytes: must be at most 64000: 1MiB"),
        (["--log-flush-interval", "9"], "--log-flush-interval: must be at most 5s: 9"),
    ],
)
def test_bad_output_settings_name_their_origin(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(argv)
    assert message in str(caught.value)


def test_artifacts_and_results_defaults(tmp_path: Path) -> None:
    settings = parse([], {"PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "data")})
    assert settings.artifacts.location == ArtifactLocation(
        directory=(tmp_path / "data" / "batchyard" / "artifacts").resolve()
    )
    assert (settings.artifacts.endpoint_url, settings.artifacts.region) == (None, None)
    limits = settings.execution.result_limits
    assert limits == ResultLimits(max_bytes=5 * 1024**3, max_files=10_000)
    store = settings.artifact_store()
    assert isinstance(store, LocalArtifactStore)
    assert store.root == (tmp_path / "data" / "batchyard" / "artifacts").resolve()
    assert settings.execution.artifacts is None  # the app gives its executions the one store


def test_artifacts_on_s3_from_flags_and_environment() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "BATCHYARD_ARTIFACTS": "/ignored/for/the/flag",
        "BATCHYARD_ARTIFACTS_REGION": "eu-west-1",
        "BATCHYARD_RESULTS_MAX_FILES": "50",
        "BATCHYARD_S3_READ_TIMEOUT": "7.5",
    }
    argv = [
        "--artifacts",
        "s3://results-bucket/team/a",
        "--artifacts-endpoint-url",
        "http://127.0.0.1:9000",
        "--results-max-bytes",
        "1GiB",
        "--s3-max-attempts",
        "5",
    ]
    settings = parse(argv, env)
    assert settings.artifacts.location == ArtifactLocation(
        bucket="results-bucket", prefix="team/a/"
    )
    assert settings.artifacts.endpoint_url == "http://127.0.0.1:9000"
    assert settings.artifacts.region == "eu-west-1"
    assert settings.execution.result_limits == ResultLimits(max_bytes=1024**3, max_files=50)
    store = settings.artifact_store()
    assert isinstance(store, S3ArtifactStore)
    assert store.describe() == "s3://results-bucket/team/a/ at http://127.0.0.1:9000"
    assert settings.execution.sources.s3.read_timeout == 7.5
    assert settings.execution.sources.s3.max_attempts == 5


def test_source_limits_and_git_timeout() -> None:
    assert parse([]).execution.sources.s3 == S3Limits()
    assert parse([]).execution.sources.git_timeout == DEFAULT_GIT_TIMEOUT
    env = {"PATH": "/usr/bin:/bin", "BATCHYARD_GIT_TIMEOUT": "90"}
    argv = ["--s3-source-max-objects", "20", "--s3-source-max-bytes", "10MiB"]
    argv += ["--s3-connect-timeout", "3", "--git-timeout", "120"]
    settings = parse(argv, env)
    assert settings.execution.sources.s3 == S3Limits(
        max_objects=20, max_bytes=10 * 1024**2, connect_timeout=3.0
    )
    assert settings.execution.sources.git_timeout == 120.0
    assert parse(["--git-timeout", "2m"]).execution.sources.git_timeout == 120.0


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--artifacts", "gs://bucket"], {}, "--artifacts: 'gs://bucket': only a directory"),
        ([], {"BATCHYARD_ARTIFACTS": "s3://"}, "BATCHYARD_ARTIFACTS: 's3://' names no bucket"),
        (
            ["--artifacts-endpoint-url", "127.0.0.1:9000"],
            {},
            "--artifacts-endpoint-url: '127.0.0.1:9000' must start with http:// or https://",
        ),
        (["--results-max-bytes", "lots"], {}, "--results-max-bytes: not a size: 'lots'"),
        (["--results-max-files", "0"], {}, "--results-max-files: must be at least 1: 0"),
        (["--results-max-files", "10001"], {}, "--results-max-files: must be at most 10000"),
        (["--s3-max-attempts", "0"], {}, "--s3-max-attempts: must be at least 1: 0"),
        (["--s3-max-attempts", "21"], {}, "--s3-max-attempts: must be at most 20: 21"),
        (["--s3-read-timeout", "0"], {}, "--s3-read-timeout: must be at least 0.001s: 0"),
        (["--s3-source-max-objects", "-1"], {}, "--s3-source-max-objects: must be at least 1"),
        ([], {"BATCHYARD_GIT_TIMEOUT": "soon"}, "BATCHYARD_GIT_TIMEOUT: not a duration: 'soon'"),
    ],
)
def test_bad_artifact_and_source_settings_name_their_origin(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(argv, {"PATH": "/usr/bin:/bin", **env})
    assert message in str(caught.value)
