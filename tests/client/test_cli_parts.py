"""The CLI's pieces without a server: definition files, masks, rendering, error headlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from batchyard.client.cli.definition_files import parse_definition, parse_mask
from batchyard.client.cli.failures import UsageError, headline
from batchyard.client.cli.render import duration, relative_time, table, to_yaml
from batchyard.client.errors import InvalidArgumentError
from batchyard.v1 import job_pb2


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
