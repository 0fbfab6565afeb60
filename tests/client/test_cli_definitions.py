"""`batchyard definitions ...` against the real server.

The CLI is synchronous; the server runs in the test's event loop, so each command runs
in a thread (`asyncio.to_thread`) while the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import sys

import pytest
import yaml

from batchyard.client.cli.main import main
from batchyard.v1 import definition_pb2, job_pb2
from batchyard.v1 import definition_service_pb2 as pb
from tests.client.cli_runner import Cli as CliRunner
from tests.server.helpers import make_queue

HELLO_YAML = """\
name: hello
description: Says hello.
config:
  type: JOB_TYPE_PYTHON
  source:
    inline:
      text: |
        import sys
        print("hello", *sys.argv[1:])
  sourceLocation: main.py
  args: [--greeting, hi]
  env: {GREETING: hi}
  timeout: 600s
"""


def Cli(capsys, target):
    return CliRunner(capsys, target, "definitions", "--timeout")


@pytest.fixture
def cli(capsys, target):
    return Cli(capsys, target)


@pytest.fixture
def closed_target():
    """An address on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


@pytest.fixture
def offline_cli(capsys, closed_target):
    return Cli(capsys, closed_target)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


SHELL_CONFIG = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL, source_location="true")
PYTHON_CONFIG = job_pb2.JobConfig(
    type=job_pb2.JOB_TYPE_PYTHON, source=job_pb2.Source(inline=job_pb2.InlineSource(text="pass"))
)


async def create_many(stub, names, config=SHELL_CONFIG):
    for name in names:
        await stub.CreateDefinition(
            pb.CreateDefinitionRequest(
                definition=definition_pb2.Definition(name=name, config=config)
            )
        )


async def test_create_from_yaml_then_get_by_name_and_uuid(cli, tmp_path):
    code, out, err = await cli("create", "-f", write(tmp_path, "hello.yaml", HELLO_YAML))
    assert (code, err) == (0, "")
    found = re.fullmatch(r"created definition hello \(version 1, uuid ([0-9a-f-]{36})\)\n", out)
    assert found, out
    uuid = found.group(1)

    code, out, _ = await cli("get", "hello")
    assert code == 0
    fields = dict(re.split(r":\s+", line, maxsplit=1) for line in out.splitlines() if ": " in line)
    assert fields["Name"] == "hello"
    assert fields["UUID"] == uuid
    assert fields["Version"] == "1"
    assert fields["Type"] == "python"
    assert fields["Args"] == "--greeting hi"
    assert fields["Timeout"] == "10m"

    code, out, _ = await cli("get", uuid, "-o", "json")
    assert code == 0
    got = json.loads(out)
    assert got["name"] == "hello"
    assert got["uuid"] == uuid
    assert got["config"]["args"] == ["--greeting", "hi"]
    assert got["config"]["source"]["inline"]["text"].startswith("import sys\n")


async def test_create_from_json_with_snake_case_names(cli, tmp_path, queues):
    await make_queue(queues, "batch")
    definition = {
        "name": "nightly",
        "config": {
            "type": "JOB_TYPE_SHELL",
            "source_location": "echo",
            "args": ["one", "two"],
            "retry_strategy": {"num_retries": 2, "retry_on_timeout": True},
            "queue": "batch",
        },
    }
    path = write(tmp_path, "nightly.json", json.dumps(definition))
    code, out, err = await cli("create", "-f", path, "-o", "yaml")
    assert (code, err) == (0, "")
    created = yaml.safe_load(out)
    assert created["version"] == "1"

    code, out, _ = await cli("get", "nightly", "-o", "yaml")
    assert code == 0
    got = yaml.safe_load(out)
    assert got["uuid"] == created["uuid"]
    assert got["config"]["retryStrategy"]["numRetries"] == 2
    assert got["config"]["retryStrategy"]["retryOnTimeout"] is True
    assert got["config"]["queue"] == "batch"


async def test_create_from_stdin(cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(HELLO_YAML))
    code, out, _ = await cli("create", "-f", "-")
    assert code == 0
    assert out.startswith("created definition hello ")


async def test_list_table_filters_and_paging(cli, definitions):
    names = ["a-one", "a-two", "b-three", "b-four", "c-five"]
    await create_many(definitions, names)
    await create_many(definitions, ["d-python"], PYTHON_CONFIG)

    code, out, err = await cli("list")
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "VERSION", "TYPE", "QUEUE", "UPDATED", "UUID"]
    assert [row.split()[0] for row in rows] == [*sorted(names), "d-python"]
    first = rows[0].split()
    assert first[1:4] == ["1", "shell", "default"]
    assert "ago" in rows[0] or "just now" in rows[0]

    code, out, err = await cli("list", "--limit", "2")
    assert code == 0
    assert [row.split()[0] for row in out.splitlines()[1:]] == ["a-one", "a-two"]
    assert "there are more" in err

    code, out, err = await cli("list", "--all", "--page-size", "2", "-o", "json")
    assert code == 0
    assert err == ""
    assert [d["name"] for d in json.loads(out)] == [*sorted(names), "d-python"]

    code, out, err = await cli("list", "--limit", "3", "--page-size", "2", "-o", "json")
    assert code == 0
    assert [d["name"] for d in json.loads(out)] == ["a-one", "a-two", "b-four"]
    assert "there are more" in err

    code, out, err = await cli("list", "--limit", "6", "-o", "json")
    assert len(json.loads(out)) == 6
    assert err == ""

    code, out, _ = await cli("list", "--prefix", "b-", "-o", "yaml")
    assert [d["name"] for d in yaml.safe_load(out)] == ["b-four", "b-three"]

    code, out, _ = await cli("list", "--type", "python", "-o", "json")
    assert [d["name"] for d in json.loads(out)] == ["d-python"]


async def test_list_nothing(cli):
    code, out, err = await cli("list")
    assert (code, out) == (0, "")
    assert "no definitions" in err
    code, out, _ = await cli("list", "-o", "json")
    assert (code, json.loads(out)) == (0, [])


@pytest.mark.parametrize("fmt", ["json", "yaml"])
async def test_update_round_trip_from_get_output(cli, tmp_path, fmt):
    await cli("create", "-f", write(tmp_path, "hello.yaml", HELLO_YAML))
    code, out, _ = await cli("get", "hello", "-o", fmt)
    assert code == 0
    edited = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    edited["config"]["args"] = ["--greeting", "bonjour"]
    text = json.dumps(edited) if fmt == "json" else yaml.safe_dump(edited)
    path = write(tmp_path, f"edited.{fmt}", text)

    code, out, err = await cli("update", "hello", "-f", path)
    assert (code, err) == (0, "")
    assert out.startswith("updated definition hello (version 2, ")

    code, out, _ = await cli("get", "hello", "-o", "json")
    now = json.loads(out)
    assert now["version"] == "2"
    assert now["config"]["args"] == ["--greeting", "bonjour"]
    assert now["description"] == "Says hello."
    assert now["config"]["source"] == edited["config"]["source"]

    code, out, _ = await cli("get", "hello", "--version", "1", "-o", "json")
    assert code == 0
    old = json.loads(out)
    assert old["version"] == "1"
    assert old["config"]["args"] == ["--greeting", "hi"]


async def test_update_with_mask_and_expected_version(cli, tmp_path):
    await cli("create", "-f", write(tmp_path, "hello.yaml", HELLO_YAML))
    changes = write(
        tmp_path,
        "changes.yaml",
        "description: ignored\nconfig: {args: [x], timeout: 60s, type: JOB_TYPE_PYTHON}\n",
    )
    code, out, _ = await cli(
        "update", "hello", "-f", changes, "--mask", "config.args", "-o", "json"
    )
    assert code == 0
    updated = json.loads(out)
    assert updated["version"] == "2"
    assert updated["config"]["args"] == ["x"]
    assert updated["config"]["timeout"] == "600s"
    assert updated["description"] == "Says hello."

    code, out, err = await cli(
        "update", "hello", "-f", changes, "--mask", "config.timeout", "--expected-version", "1"
    )
    assert (code, out) == (1, "")
    assert err.startswith("error: ")
    assert "version 2" in err

    code, out, _ = await cli(
        "update", "hello", "-f", changes, "--mask", "config.timeout", "--expected-version", "2"
    )
    assert code == 0
    assert "version 3" in out


async def test_update_with_a_file_that_sets_nothing_updatable(offline_cli, tmp_path):
    code, _, err = await offline_cli(
        "update", "hello", "-f", write(tmp_path, "x.yaml", "uuid: 0b6f3c1e\n")
    )
    assert code == 2
    assert "nothing to update" in err


async def test_delete_then_get_is_not_found(cli, tmp_path):
    await cli("create", "-f", write(tmp_path, "hello.yaml", HELLO_YAML))
    code, out, err = await cli("delete", "hello")
    assert (code, out, err) == (0, "deleted definition hello\n", "")

    code, out, err = await cli("get", "hello")
    assert (code, out) == (1, "")
    assert err == "error: definition 'hello' not found\n"

    code, _, err = await cli("delete", "hello")
    assert code == 1
    assert "not found" in err


async def test_create_twice_is_refused(cli, tmp_path):
    path = write(tmp_path, "hello.yaml", HELLO_YAML)
    assert (await cli("create", "-f", path))[0] == 0
    code, out, err = await cli("create", "-f", path)
    assert (code, out) == (1, "")
    assert "already exists" in err


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yaml", "name: [unclosed\n", "not valid YAML"),
        ("bad.json", '{"name": "x",}', "not valid JSON"),
        ("list.yaml", "- name: x\n", "expected a mapping"),
        ("empty.yaml", "", "is empty"),
        ("typo.yaml", "name: x\nconfig: {tpye: JOB_TYPE_SHELL}\n", "tpye"),
        ("enum.yaml", "name: x\nconfig: {type: JOB_TYPE_COBOL}\n", "JOB_TYPE_COBOL"),
    ],
)
async def test_unusable_file_is_a_usage_error(offline_cli, tmp_path, name, text, expected):
    code, out, err = await offline_cli("create", "-f", write(tmp_path, name, text))
    assert (code, out) == (2, "")
    assert err.startswith("error: ")
    assert expected in err


async def test_missing_file_is_a_usage_error(offline_cli, tmp_path):
    code, _, err = await offline_cli("create", "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err
    assert "nope.yaml" in err


async def test_bad_definition_names_the_field(cli, tmp_path):
    text = "name: hello\nconfig: {type: JOB_TYPE_SHELL, sourceLocation: echo, timeout: -5s}\n"
    code, out, err = await cli("create", "-f", write(tmp_path, "bad.yaml", text))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith("error: ")
    assert "  definition.config.timeout: must be positive and at most 7 days" in lines

    text = "config: {type: JOB_TYPE_SHELL, sourceLocation: echo}\n"
    code, _, err = await cli("create", "-f", write(tmp_path, "noname.yaml", text))
    assert code == 1
    assert "  definition.name: required" in err.splitlines()


async def test_bad_update_names_the_field_in_changes(cli, tmp_path):
    await cli("create", "-f", write(tmp_path, "hello.yaml", HELLO_YAML))
    path = write(tmp_path, "bad.yaml", "config: {priority: 5000}\n")
    code, _, err = await cli("update", "hello", "-f", path, "--mask", "config.priority")
    assert code == 1
    assert any(line.startswith("  changes.config.priority: ") for line in err.splitlines())


async def test_unreachable_server(offline_cli, closed_target):
    code, out, err = await offline_cli("get", "hello")
    assert (code, out) == (3, "")
    assert f"cannot reach the Batchyard server at {closed_target}" in err
    assert "--server" in err


async def test_server_from_the_environment(capsys, closed_target, monkeypatch):
    monkeypatch.setenv("BATCHYARD_SERVER", closed_target)
    code = await asyncio.to_thread(main, ["definitions", "list"])
    assert code == 3
    assert closed_target in capsys.readouterr().err


@pytest.mark.parametrize("command", ["create", "get", "list", "update", "delete"])
def test_every_command_has_help_with_examples(capsys, command):
    with pytest.raises(SystemExit) as exited:
        main(["definitions", command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"batchyard definitions {command}" in out
    assert "--server" in out


def test_definitions_without_a_command_prints_help(capsys):
    assert main(["definitions"]) == 2
    assert "COMMAND" in capsys.readouterr().err
