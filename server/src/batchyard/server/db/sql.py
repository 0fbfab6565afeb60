"""Named SQL blocks loaded once from the .sql files in `queries/`.

A block starts with a line `-- name: <name>` and runs to the next one. Every SQL
statement the server runs lives in those files; Python refers to them by name.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    """Split a .sql file into its named blocks."""
    blocks: dict[str, str] = {}
    matches = list(_HEADER.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = match[1]
        if name in blocks:
            raise ValueError(f"duplicate query name {name!r}")
        blocks[name] = text[match.end() : end].strip()
    return blocks


@cache
def queries() -> dict[str, str]:
    """All named queries of the package, by name."""
    folder = resources.files("batchyard.server.db") / "queries"
    merged: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_blocks(entry.read_text(encoding="utf-8")).items():
            if name in merged:
                raise ValueError(f"query {name!r} is defined twice")
            merged[name] = sql
    return merged


def q(name: str) -> str:
    """The SQL of the named query."""
    return queries()[name]
