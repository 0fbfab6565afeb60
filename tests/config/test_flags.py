"""Declared flags: flag over variable over default, one error text naming the source."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from batchyard.config import (
    Flag,
    SettingsError,
    add_flags,
    choice,
    comma_list,
    duration,
    integer,
    path,
    resolve,
    size,
    switch,
    text,
)

SLOTS = Flag("slots", integer(1, 1000), "attempts run at once", default=4)
GRACE = Flag("grace", duration(), "shutdown grace", default=30.0)
MEMORY = Flag("max-memory", size(1024), "memory of each job")
QUEUES = Flag("queues", comma_list(text()), "queues to serve", default=("default",))
LEVEL = Flag("log-level", choice("debug", "info"), "log level", default="info")
TLS = Flag("tls", switch(), "connect with TLS", presence=True)
REFLECTION = Flag(
    "reflection", switch(), "serve reflection", default=True, presence=True, negatable=True
)
TOKEN = Flag("token", text(), "bearer token", secret=True)
DB = Flag("database-url", text(), "PostgreSQL URL", env=("BATCHYARD_DATABASE_URL", "DATABASE_URL"))
STATE = Flag(
    "state-dir",
    path(),
    "state",
    default_from=lambda env: Path(env.get("HOME", "/")) / "s",
    default_text="~/s",
)
FLAGS = (SLOTS, GRACE, MEMORY, QUEUES, LEVEL, TLS, REFLECTION, TOKEN, DB, STATE)


def parse(argv: list[str], env: dict[str, str] | None = None):
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_flags(parser, FLAGS)
    return resolve(FLAGS, parser.parse_args(argv), env or {})


def test_defaults() -> None:
    values = parse([], {"HOME": "/home/a"})
    assert values[SLOTS] == 4
    assert values[GRACE] == 30.0
    assert values[MEMORY] is None
    assert values[QUEUES] == ("default",)
    assert values[TLS] is None
    assert values[REFLECTION] is True
    assert values[STATE] == Path("/home/a/s")
    assert not values.given(SLOTS)


def test_flag_wins_over_variable_which_wins_over_default() -> None:
    env = {"BATCHYARD_SLOTS": "8", "BATCHYARD_GRACE": "2m", "BATCHYARD_MAX_MEMORY": "1.5GiB"}
    values = parse(["--slots", "16"], env)
    assert values[SLOTS] == 16
    assert values[GRACE] == 120.0
    assert values[MEMORY] == int(1.5 * 1024**3)
    assert values.given(SLOTS) and values.given(GRACE)


def test_blank_variable_is_unset() -> None:
    assert parse([], {"BATCHYARD_SLOTS": "  "})[SLOTS] == 4


def test_second_variable_name() -> None:
    assert parse([], {"DATABASE_URL": "postgresql://x"})[DB] == "postgresql://x"
    both = {"DATABASE_URL": "postgresql://x", "BATCHYARD_DATABASE_URL": "postgresql://y"}
    assert parse([], both)[DB] == "postgresql://y"


def test_switches() -> None:
    assert parse(["--tls"])[TLS] is True
    assert parse([], {"BATCHYARD_TLS": "yes"})[TLS] is True
    assert parse(["--no-reflection"])[REFLECTION] is False
    assert parse([], {"BATCHYARD_REFLECTION": "0"})[REFLECTION] is False


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--slots", "0"], {}, "--slots: must be at least 1: 0"),
        ([], {"BATCHYARD_SLOTS": "5000"}, "BATCHYARD_SLOTS: must be at most 1000: 5000"),
        (["--slots", "many"], {}, "--slots: not a whole number: 'many'"),
        (["--grace=-5s"], {}, "--grace: must be at least 0s: -5s"),
        ([], {"BATCHYARD_GRACE": "soon"}, "BATCHYARD_GRACE: not a duration: 'soon'"),
        (["--max-memory", "512"], {}, "--max-memory: must be at least 1KiB: 512"),
        (["--log-level", "loud"], {}, "--log-level: must be one of debug, info: 'loud'"),
        ([], {"BATCHYARD_TLS": "maybe"}, "BATCHYARD_TLS: must be one of 1, 0, true"),
        (["--queues", " , "], {}, "--queues: needs at least 1 item(s)"),
    ],
)
def test_bad_values_name_their_source(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(argv, env)
    assert str(caught.value).startswith(message)


def test_a_secret_is_never_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        parse(["--token", " "])
    assert str(caught.value) == "--token: has a bad value"


def test_help_names_variable_and_default() -> None:
    assert SLOTS.help_text() == "attempts run at once (BATCHYARD_SLOTS; default 4)"
    assert GRACE.help_text() == "shutdown grace (BATCHYARD_GRACE; default 30s)"
    assert MEMORY.help_text() == "memory of each job (BATCHYARD_MAX_MEMORY)"
    assert STATE.help_text() == "state (BATCHYARD_STATE_DIR; default ~/s)"
    assert DB.help_text() == "PostgreSQL URL (BATCHYARD_DATABASE_URL; DATABASE_URL)"
    parser = argparse.ArgumentParser()
    add_flags(parser, [Flag("ratio", integer(), "100% of it", default=1)])
    assert "100% of it" in parser.format_help()


def test_a_repeatable_flag_gives_every_value_and_its_origin() -> None:
    target: Flag[str] = Flag("target", text(), "a target", flag_only=True, repeatable=True)
    parser = argparse.ArgumentParser()
    add_flags(parser, [target, SLOTS])
    args = parser.parse_args(["--target", "a", "--target", "b"])
    values = resolve([target, SLOTS], args, {"BATCHYARD_SLOTS": "3"})
    assert values.every(target) == ("a", "b") and values[target] == "b"
    assert (values.origin(target), values.origin(SLOTS)) == ("--target", "BATCHYARD_SLOTS")
    none = resolve([target, SLOTS], parser.parse_args([]), {})
    assert none.every(target) == () and none[target] is None
    assert none.origin(SLOTS) == ""
