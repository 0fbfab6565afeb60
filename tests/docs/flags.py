"""The flag tables of the reference docs, generated from the real argument parsers.

A README holds a table between ``<!-- flags: batchyard server -->`` and
``<!-- /flags -->``; `python -m tests.docs.flags --write` refreshes every such table and
tests/docs/test_flag_tables.py fails when one is stale, so the docs list exactly the flags
(and their BATCHYARD_* variables and defaults) the commands have.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from batchyard.client.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["server/README.md", "worker/README.md", "client/README.md"]
BLOCK = re.compile(r"(<!-- flags: ([a-z -]+?) -->\n)(.*?)(<!-- /flags -->)", re.DOTALL)


def subparser(command: str) -> argparse.ArgumentParser:
    """The parser of e.g. "batchyard server" or "batchyard tokens create"."""
    parser = build_parser()
    for word in command.split()[1:]:
        choices = next(
            a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)
        )
        parser = choices[word]
    return parser


def flag_table(command: str) -> str:
    parser = subparser(command)
    formatter = parser._get_formatter()
    rows = ["| flag | description |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if not action.option_strings:
            name = f"`{action.metavar or action.dest}`"
        else:
            value = (
                ""
                if action.nargs == 0
                else f" {formatter._format_args(action, action.dest.upper())}"
            )
            name = ", ".join(f"`{o}{value}`" for o in action.option_strings)
        text = formatter._expand_help(action) if action.help else ""
        if action.choices and not isinstance(action.choices, dict) and "{" not in name:
            text += f" (one of: {', '.join(map(str, action.choices))})"
        described = " ".join(text.split()).replace("|", "\\|")
        shown = name.replace("|", "\\|")
        rows.append(f"| {shown} | {described} |")
    return "\n".join(rows) + "\n"


CLEAN_HOME = "/home/user"


def clean_tables(commands: list[str]) -> dict[str, str]:
    """`flag_table` of each command as a new user sees it: defaults read from no BATCHYARD_*
    variable and paths below /home/user (so the docs do not depend on who generated them).
    One process makes them all (each start imports the whole CLI)."""
    if not commands:
        return {}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BATCHYARD_", "XDG_", "DATABASE_URL", "AWS_"))
    }
    env["HOME"] = CLEAN_HOME
    done = subprocess.run(
        [sys.executable, "-m", "tests.docs.flags", "--tables", *commands],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    tables: dict[str, str] = json.loads(done.stdout)
    return tables


def clean_table(command: str) -> str:
    return clean_tables([command])[command]


def refreshed(text: str) -> str:
    tables = clean_tables(sorted({m[2] for m in BLOCK.finditer(text)}))
    return BLOCK.sub(lambda m: m[1] + tables[m[2]] + m[4], text)


def main() -> int:
    if sys.argv[1:2] == ["--table"]:
        sys.stdout.write(flag_table(sys.argv[2]))
        return 0
    if sys.argv[1:2] == ["--tables"]:
        sys.stdout.write(json.dumps({command: flag_table(command) for command in sys.argv[2:]}))
        return 0
    stale = []
    for doc in DOCS:
        path = ROOT / doc
        if not path.exists():
            continue
        text = path.read_text()
        fresh = refreshed(text)
        if fresh != text:
            stale.append(doc)
            if "--write" in sys.argv:
                path.write_text(fresh)
    if stale and "--write" not in sys.argv:
        print(f"stale flag tables in {', '.join(stale)}: run python -m tests.docs.flags --write")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
