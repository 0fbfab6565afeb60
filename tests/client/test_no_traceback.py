"""No traceback anywhere: every command (enumerated from the parser, so new commands are
covered as they are added) run with broken input or environment ends with a short error
that says what to fix, never a Python traceback: an unreachable server, a wrong token,
unknown flags, unreadable files. And the processes' own failures: a busy port for `dev`
and `server` (hint: --listen), `server bootstrap` against a database that is not there."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from batchyard.client.cli.main import build_parser, main
from tests.keys import TEST_KEYS_ENV
from tests.processes import free_port

PLUGINS = ("dev", "server", "worker")
BATCHYARD = str(Path(sys.executable).parent / "batchyard")


def leaves() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every client command that runs something: (path, its parser)."""
    found = []

    def visit(parser: argparse.ArgumentParser, path: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((" ".join(path), parser))
        for action in subs:
            for name, sub in action.choices.items():
                visit(sub, [*path, name])

    visit(build_parser(), [])
    return [(p, parser) for p, parser in found if p.split(" ")[0] not in PLUGINS]


def argv_for(path: str, parser: argparse.ArgumentParser, server: str, *extra: str) -> list[str]:
    """The command with a value for each required argument (a file that does not exist
    where a file is asked for), a short deadline and reconnect timeout."""
    argv = path.split()
    options = {s for a in parser._actions for s in a.option_strings}
    for action in parser._actions:
        if action.option_strings and not action.required:
            continue
        if isinstance(action, argparse._HelpAction) or action.nargs == 0:
            continue
        value = "x"
        if action.choices:
            value = str(next(iter(action.choices)))
        elif "FILE" in str(action.metavar or "") or "file" in (action.help or ""):
            value = "/nonexistent/input.yaml"
        argv += [action.option_strings[0], value] if action.option_strings else [value]
    for group in parser._mutually_exclusive_groups:  # e.g. --cron | --every
        if group.required:
            first = group._group_actions[0]
            argv += [first.option_strings[0], *([] if first.nargs == 0 else ["x"])]
    for flag, value in (("--server", server), ("--timeout", "1"), ("--reconnect-timeout", "1")):
        if flag in options:
            argv += [flag, value]
    return argv + list(extra)


COMMANDS = leaves()


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """A user with no token anywhere."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("BATCHYARD_TOKEN", raising=False)
    monkeypatch.delenv("BATCHYARD_SERVER", raising=False)


def assert_short_error(code: int, text: str, argv: list[str]) -> None:
    assert "Traceback" not in text, (argv, text)
    assert code != 0 or text, argv
    if code:
        assert "error" in text.lower() or "usage" in text.lower(), (argv, text)
        assert len(text.strip().splitlines()) <= 30, (argv, text)


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[p or "batchyard" for p, _ in COMMANDS])
def test_unreachable_server_no_token_and_unreadable_files(capsys, empty_home, path, parser):
    argv = argv_for(path, parser, closed_port())
    code, text = run_cli(capsys, argv)
    assert_short_error(code, text, argv)


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[p or "batchyard" for p, _ in COMMANDS])
def test_unknown_flags(capsys, path, parser):
    argv = argv_for(path, parser, closed_port(), "--no-such-flag")
    code, text = run_cli(capsys, argv)
    assert code == 2 and "unrecognized arguments: --no-such-flag" in text, (argv, text)
    assert_short_error(code, text, argv)


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[p or "batchyard" for p, _ in COMMANDS])
async def test_a_wrong_or_expired_token(capsys, target, path, parser):
    argv = argv_for(path, parser, target, "--token", "byt_expired0000000000000000000000")
    if "--token" not in {s for a in parser._actions for s in a.option_strings}:
        argv = argv[:-2]
    code, text = await asyncio.to_thread(run_cli, capsys, argv)
    assert_short_error(code, text, argv)


def server_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    home = Path(os.environ.get("TMPDIR", "/tmp"))
    full = {"PATH": "/usr/bin:/bin", "HOME": str(home), **TEST_KEYS_ENV, **(env or {})}
    return subprocess.run([BATCHYARD, *args], capture_output=True, text=True, timeout=120, env=full)


@pytest.mark.parametrize("command", ["dev", "server"])
def test_a_busy_port_says_choose_another_with_listen(command, tmp_path, database_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        listen = f"127.0.0.1:{busy.getsockname()[1]}"
        where = ["--data-dir", str(tmp_path / "pg")] if command == "dev" else []
        where += ["--database-url", database_url] if command == "server" else []
        done = server_process(command, "--listen", listen, *where)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"cannot listen on {listen}" in done.stderr and "--listen HOST:PORT" in done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw0rdX@nohost.invalid/batchyard",  # unreachable host
        "postgresql://u:pw0rdX@127.0.0.1:{closed}/batchyard",  # nothing listening
    ],
)
def test_bootstrap_against_a_database_that_is_not_there(url):
    done = server_process("server", "bootstrap", "--database-url", url.format(closed=free_port()))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "pw0rdX" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the info lines of the start
    assert "cannot use the database" in last and "--database-url" in last, done.stderr
