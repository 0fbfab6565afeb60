"""One grammar across the client's commands: each has --help with examples, every reading
command takes -o table|json|yaml, and colours appear only where asked for."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

import pytest

from batchyard.client.cli.completion import walk
from batchyard.client.cli.log_views import wants_colour
from batchyard.client.cli.main import build_parser, main
from batchyard.client.cli.run_views import paint_status, runs_table
from batchyard.v1 import run_pb2

# Commands that come from the server and worker packages (entry points).
PLUGINS = ("dev", "server", "worker")
READING = [
    "definitions get",
    "definitions list",
    "runs get",
    "runs list",
    "runs watch",
    "logs",
    "results list",
    "sql",
    "tokens list",
    "workspaces list",
    "audit list",
    "workers list",
    "workers get",
]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parser_of(path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in path.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


COMMANDS = [c.path for c in walk(build_parser())]
CLIENT_COMMANDS = [p for p in COMMANDS if p.split(" ")[0] not in PLUGINS]


def test_the_tree_is_what_the_docs_say() -> None:
    top = {p for p in COMMANDS if p and " " not in p}
    assert top == {
        "definitions",
        "runs",
        "logs",
        "results",
        "sql",
        "tokens",
        "workspaces",
        "audit",
        "completion",
        "queues",
        "schedules",
        "ingest",
        "workers",
        *PLUGINS,
    }


@pytest.mark.parametrize("path", CLIENT_COMMANDS, ids=lambda p: p or "batchyard")
def test_every_client_command_has_help_with_examples(path: str) -> None:
    text = parser_of(path).format_help()
    assert "\nexamples:\n" in text, f"`batchyard {path} --help` shows no examples"
    examples = text.split("\nexamples:\n", 1)[1]
    assert f"batchyard {path}".rstrip() in examples


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p or "batchyard")
def test_help_exits_zero_everywhere(path: str, capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main([*path.split(), "--help"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.startswith("usage: batchyard")


def test_version_names_every_installed_part(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    printed = capsys.readouterr().out.strip()
    expected = ", ".join(f"{p} {version(f'batchyard-{p}')}" for p in ("client", "server", "worker"))
    assert printed == f"batchyard {version('batchyard-client')} ({expected})"


@pytest.mark.parametrize("path", READING)
def test_every_reading_command_takes_output_formats(path: str) -> None:
    output = next(a for a in parser_of(path)._actions if "-o" in a.option_strings)
    assert output.option_strings == ["-o", "--output"]
    assert {"table", "json", "yaml"} <= set(output.choices or ())


def test_status_colours_keep_the_table_aligned(monkeypatch) -> None:
    now = datetime.now(UTC)
    runs = [
        run_pb2.Run(uuid="a" * 36, status=run_pb2.RUN_STATUS_SUCCEEDED),
        run_pb2.Run(uuid="b" * 36, status=run_pb2.RUN_STATUS_FAILED),
    ]
    plain = runs_table(runs, now)
    coloured = runs_table(runs, now, colour=True)
    assert "\x1b[32msucceeded" in coloured and "\x1b[1;31mfailed" in coloured
    assert ANSI.sub("", coloured) == plain
    assert "\x1b[" not in plain
    assert paint_status("run x failed: timeout", True).startswith("\x1b[1;31m")
    assert paint_status("run x pending", True) == "run x pending"


def test_colour_only_on_a_terminal_without_no_color(monkeypatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    class Pipe:
        def isatty(self) -> bool:
            return False

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wants_colour(Tty())  # type: ignore[arg-type]
    assert not wants_colour(Pipe())  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(Tty())  # type: ignore[arg-type]


def test_log_entries_in_every_output_format() -> None:
    from batchyard.client.cli.log_views import entry_text
    from tests.client.acting import ERR, log_entry

    entry = log_entry(3, ERR, "disk full")
    assert entry_text(entry, "table") == entry_text(entry, "text")
    assert entry_text(entry, "text").endswith("stderr WARNING disk full")
    assert entry_text(entry, "json").startswith('{"seq":"3",')
    document = entry_text(entry, "yaml")
    assert document.startswith("---\nseq: '3'\n") and "message: disk full" in document


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["runs", "list", "--timeout", "-5s"],
            "--timeout/--request-timeout: must be positive: -5s",
        ),
        (["runs", "watch", "x", "--wait-timeout", "-5s"], "--wait-timeout: must be positive: -5s"),
    ],
)
def test_a_negative_duration_is_read_as_a_value_and_refused_clearly(capsys, argv, message):
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "expected one argument" not in err


def test_the_request_timeout_takes_a_duration() -> None:
    args = build_parser().parse_args(["runs", "list", "--timeout", "1.5m"])
    assert args.timeout == 90
