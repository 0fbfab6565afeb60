"""The CLI's pieces without a server: definition files, masks, rendering, error headlines."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from batchyard.client.cli.definition_files import parse_definition, parse_mask
from batchyard.client.cli.failures import UsageError, headline
from batchyard.client.cli.options import duration_seconds, env_pair
from batchyard.client.cli.render import duration, relative_time, table, to_yaml
from batchyard.client.cli.run_views import attempts_table, elapsed, outcome_lines, state_text
from batchyard.client.errors import InvalidArgumentError
from batchyard.config import parse_duration
from batchyard.v1 import job_pb2, run_pb2


def test_camel_and_snake_case_files_parse_alike():
    camel = parse_definition(
        '{"name": "a", "config": {"type": "JOB_TYPE_SHELL", "sourceLocation": "echo"}}', "a"
    )
    snake = parse_definition(
        "name: a\nconfig: {type: JOB_TYPE_SHELL, source_location: echo}\n", "a.yaml"
    )
    assert camel.definition == snake.definition
    assert camel.definition.config.type == job_pb2.JOB_TYPE_SHELL
    assert camel.fields == snake.fields == ("name", "config")


def test_default_mask_is_the_updatable_fields_present():
    loaded = parse_definition("uuid: x\ndescription: ''\nconfig: {}\nversion: '3'\n", "x.yaml")
    assert loaded.default_mask() == ["description", "config"]


def test_unquoted_yaml_timestamps_are_accepted():
    loaded = parse_definition("name: a\ncreateTime: 2024-05-01T10:00:00Z\n", "a.yaml")
    assert loaded.definition.create_time.ToDatetime(tzinfo=UTC) == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )


def test_wrong_value_type_is_a_usage_error():
    with pytest.raises(UsageError, match=r"a\.yaml: not a valid definition"):
        parse_definition("name: a\nconfig: {args: 3}\n", "a.yaml")


def test_mask_paths_become_snake_case():
    assert parse_mask("name, config.sourceLocation,config.retry_strategy") == [
        "name",
        "config.source_location",
        "config.retry_strategy",
    ]
    with pytest.raises(UsageError):
        parse_mask(" , ")


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (timedelta(seconds=2), "just now"),
        (timedelta(seconds=42), "42 s ago"),
        (timedelta(minutes=3, seconds=59), "3 min ago"),
        (timedelta(hours=5), "5 h ago"),
        (timedelta(days=1, hours=2), "1 day ago"),
        (timedelta(days=12), "12 days ago"),
        (timedelta(days=400), "2023-01-27"),
        (timedelta(seconds=-30), "just now"),
    ],
)
def test_relative_time(ago, text):
    now = datetime(2024, 3, 2, 12, tzinfo=UTC)
    assert relative_time(now - ago, now) == text


def test_duration():
    assert [duration(s) for s in (0.5, 59, 60, 90, 3600, 90061)] == [
        "0.5s",
        "59s",
        "1m",
        "1m30s",
        "1h",
        "1d1h1m1s",
    ]


def test_table_aligns_columns():
    assert table(["A", "BB"], [["xxx", "y"], ["z", ""]]) == "A    BB\nxxx  y\nz"


def test_yaml_writes_multiline_text_as_a_block():
    assert to_yaml({"text": "a\nb\n"}) == "text: |\n  a\n  b"


def test_headline_leaves_out_the_violations_listed_below_it():
    error = InvalidArgumentError(
        "invalid request: definition.name: required; definition.queue: bad",
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_FIELD",
        [("definition.name", "required"), ("definition.queue", "bad")],
    )
    assert headline(error) == "invalid request"
    plain = InvalidArgumentError("something else", field_violations=[("a", "b")])
    assert headline(plain) == "something else"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("1.5m", 90),
        ("2h", 7200),
        ("1d", 86400),
        (" 5M ", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
    ],
)
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "soon", "0", "-5", "inf", "nan", "5w"])
def test_duration_seconds_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        duration_seconds(text)


def test_duration_errors_read_as_on_the_server_and_worker():
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        duration_seconds("soon")
    with pytest.raises(ValueError) as shared:
        parse_duration("soon")
    assert str(caught.value) == str(shared.value)


def test_env_pair():
    assert env_pair("A=1") == ("A", "1")
    assert env_pair("A=") == ("A", "")
    assert env_pair("A=b=c") == ("A", "b=c")
    assert env_pair("A") == ("A", None)
    with pytest.raises(argparse.ArgumentTypeError):
        env_pair("=1")


def _run(status, reason=run_pb2.RUN_REASON_UNSPECIFIED, **fields):
    return run_pb2.Run(uuid="u", status=status, reason=reason, **fields)


def test_state_text():
    running = _run(
        run_pb2.RUN_STATUS_RUNNING, attempts=[run_pb2.Attempt(number=1), run_pb2.Attempt(number=2)]
    )
    assert state_text(running) == "running (attempt 2)"
    running.progress, running.cancel_requested = 40, True
    assert state_text(running) == "running (attempt 2, 40%, cancel requested)"
    assert state_text(_run(run_pb2.RUN_STATUS_PENDING, run_pb2.RUN_REASON_IN_QUEUE)) == (
        "pending (in queue)"
    )
    failed = _run(run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE)
    assert state_text(failed) == "failed (non-zero exit code)"
    cancelled = _run(run_pb2.RUN_STATUS_CANCELLED, run_pb2.RUN_REASON_CANCELLED_BY_USER)
    assert state_text(cancelled) == "cancelled"
    assert state_text(_run(run_pb2.RUN_STATUS_SUCCEEDED)) == "succeeded"


def test_a_handed_back_attempt_says_released():
    from datetime import UTC, datetime

    from google.protobuf.timestamp_pb2 import Timestamp

    ended = Timestamp(seconds=1_700_000_000)
    attempts = [
        run_pb2.Attempt(
            number=1,
            worker_id="w1",
            start_time=Timestamp(seconds=1_699_999_990),
            end_time=ended,
            status=run_pb2.RUN_STATUS_PENDING,
            reason=run_pb2.RUN_REASON_IN_QUEUE,
            message="released by its worker",
        ),
        run_pb2.Attempt(
            number=2,
            worker_id="w2",
            start_time=ended,
            end_time=Timestamp(seconds=1_700_000_005),
            status=run_pb2.RUN_STATUS_SUCCEEDED,
            exit_code=0,
        ),
        run_pb2.Attempt(
            number=3,
            worker_id="w3",
            status=run_pb2.RUN_STATUS_PENDING,
            reason=run_pb2.RUN_REASON_IN_QUEUE,
        ),
    ]
    now = datetime.fromtimestamp(1_700_000_010, UTC)
    rows = attempts_table(attempts, now).splitlines()[1:]
    assert " released " in rows[0]
    assert "pending" not in rows[0]
    assert "in queue" not in rows[0]
    assert " succeeded " in rows[1]
    assert "pending" in rows[2]  # not ended: still what it says


def test_outcome_lines():
    assert outcome_lines(_run(run_pb2.RUN_STATUS_SUCCEEDED)) == ["run u succeeded"]
    timed_out = _run(
        run_pb2.RUN_STATUS_FAILED,
        run_pb2.RUN_REASON_TIMEOUT,
        attempts=[run_pb2.Attempt(number=1, worker_id="w", message="killed after\ntimeout 30s")],
    )
    assert outcome_lines(timed_out) == [
        "run u failed: timeout",
        "  attempt 1 on w: killed after timeout 30s",
    ]
    lost = _run(run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_REASON_SOURCE_UNAVAILABLE, message="no git")
    assert outcome_lines(lost) == ["run u failed: source unavailable", "  no git"]
    cancelled = _run(run_pb2.RUN_STATUS_CANCELLED, message="cancelled by user: oops")
    assert outcome_lines(cancelled) == ["run u cancelled", "  cancelled by user: oops"]
    exited = _run(
        run_pb2.RUN_STATUS_FAILED,
        run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE,
        attempts=[run_pb2.Attempt(number=2, exit_code=1, message="exited with code 1")],
    )
    assert outcome_lines(exited) == [
        "run u failed: non-zero exit code",
        "  attempt 2: exit code 1",
    ]


def test_elapsed():
    assert [elapsed(s) for s in (0, 3.9, 61, 3723, -1)] == [
        "0:00:00",
        "0:00:03",
        "0:01:01",
        "1:02:03",
        "0:00:00",
    ]


def test_a_closed_pipe_ends_the_cli_quietly():
    """`batchyard ... | head` must not print a traceback when head stops reading."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from batchyard.client.cli import main as m\n"
        "def handler(args):\n"
        "    for _ in range(100000):\n"
        "        print('x' * 100)\n"
        "    return 0\n"
        "m.run = lambda h, a: handler(a)\n"
        "sys.exit(m.main(['definitions', 'list']))\n"
    )
    proc = subprocess.run(
        f'{sys.executable} -c "{script}" | head -1',
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "x" * 100 + "\n"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
