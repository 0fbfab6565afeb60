"""`batchyard` starts at once: a command imports only what it uses. `--help` loads no
grpc, protobuf or database driver; a client command never loads the server's or the
worker's modules. Each check runs the real entry point in a fresh interpreter, so a new
command module that imports grpc at its top (instead of being listed lazily) fails here.
(Timings are measured with a shell loop (see the report), never asserted.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from batchyard.client.cli.main import build_parser

HEAVY_FOR_HELP = ("grpc", "google.protobuf", "asyncpg", "aiohttp", "botocore", "cryptography")
SERVER_SIDE = ("asyncpg", "aiohttp", "botocore", "aiobotocore", "cryptography")

PROBE = """
import json, sys
from batchyard.client.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.__stderr__)
"""


def modules_after(*argv: str) -> set[str]:
    """The modules loaded by `batchyard ARGV` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "BATCHYARD_SERVER": "127.0.0.1:9"},
    )
    last = done.stderr.strip().splitlines()[-1]
    return set(json.loads(last)["modules"])


def loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots or m.startswith(roots))


@pytest.mark.parametrize("argv", [["--help"], [], ["--version"], ["runs", "--help"]])
def test_help_loads_no_grpc_protobuf_or_database_driver(argv: list[str]) -> None:
    heavy = (
        HEAVY_FOR_HELP
        if argv[:1] != ["runs"]
        else ("asyncpg", "aiohttp", "botocore", "cryptography")
    )
    assert loaded(modules_after(*argv), heavy) == []


def test_the_help_of_commands_not_chosen_loads_none_of_their_modules() -> None:
    modules = modules_after("--help")
    assert not [
        m
        for m in modules
        if m.startswith(("batchyard.server.", "batchyard.worker.")) and not m.endswith(".commands")
    ]
    assert not [
        m
        for m in modules
        if m.startswith("batchyard.client.cli.")
        and m.rsplit(".", 1)[1] not in ("main", "lazy", "failures")
    ]


def test_a_client_command_loads_nothing_of_the_server_or_worker() -> None:
    modules = modules_after("runs", "list")  # no server there: it fails, after loading
    assert "batchyard.client.cli.runs" in modules
    assert loaded(modules, SERVER_SIDE) == []
    assert not [m for m in modules if m.startswith(("batchyard.server", "batchyard.worker"))]


def test_a_plugin_command_is_built_when_chosen() -> None:
    modules = modules_after("worker", "--help")
    assert "batchyard.worker.cli" in modules
    assert "batchyard.server.cli" not in modules


def top_listing(help_text: str) -> str:
    return help_text.split("options:")[0]


@pytest.mark.parametrize("command", ["", "-h", "worker"])
def test_the_lazy_listing_is_the_full_parsers(command: str) -> None:
    """What `batchyard --help` lists lazily is what the whole tree (completion, flag
    tables) says: same commands, same order, same one-line helps."""
    full = build_parser().format_help()
    lazy = build_parser(command=command).format_help()
    assert top_listing(lazy) == top_listing(full)
