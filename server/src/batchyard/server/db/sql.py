"""Named SQL blocks loaded once from the .sql files in `queries/`.

A block starts with a line `-- name: <name>` and runs to the next one. Every SQL
statement the server runs lives in those files; Python refers to them by name.

A block takes its parameters either by position (`$1`, `$2`, ...) or by name (`:run`,
`:lease_id`): named ones are compiled to `$n` once, when the files are loaded, in order
of first use, and `bind` puts keyword arguments in that order. A `::type` cast, a string
literal or a comment is never a parameter. A block may not mix the two styles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# What is never a parameter: string literals, quoted identifiers, comments.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_POSITIONAL = re.compile(r"\$\d+")


@dataclass(frozen=True)
class Query:
    name: str
    text: str
    """The SQL, with `$n` placeholders."""
    params: tuple[str, ...] = ()
    """The names of `$1`, `$2`, ... (empty: a positional block)."""


def compile_named(name: str, sql: str) -> Query:
    """`sql` with its `:name` parameters turned into `$n`."""
    params: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in params:
            params.append(match[1])
        return f"${params.index(match[1]) + 1}"

    pieces, position = [], 0
    for quoted in _QUOTED.finditer(sql):
        pieces.append(_NAMED.sub(number, sql[position : quoted.start()]))
        pieces.append(quoted[0])
        position = quoted.end()
    pieces.append(_NAMED.sub(number, sql[position:]))
    text = "".join(pieces)
    if params and _POSITIONAL.search(_QUOTED.sub("", sql)):
        raise ValueError(f"query {name!r} mixes $n and :name parameters")
    return Query(name, text, tuple(params))


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
def queries() -> dict[str, Query]:
    """All named queries of the package, by name, compiled."""
    folder = resources.files("batchyard.server.db") / "queries"
    merged: dict[str, Query] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_blocks(entry.read_text(encoding="utf-8")).items():
            if name in merged:
                raise ValueError(f"query {name!r} is defined twice")
            merged[name] = compile_named(name, sql)
    return merged


def q(name: str) -> str:
    """The SQL of the named query (a positional block: pass its arguments in order)."""
    return queries()[name].text


def bind(name: str, /, **values: Any) -> tuple[Any, ...]:
    """The SQL of a block with named parameters, then its arguments in `$n` order:
    `await conn.fetch(*bind("list_runs", workspace=ws.id, ...))`. Every parameter must
    be given, and nothing else."""
    query = queries()[name]
    if not query.params:
        raise ValueError(f"query {name!r} takes positional parameters: use q()")
    missing = [p for p in query.params if p not in values]
    extra = sorted(set(values) - set(query.params))
    if missing or extra:
        raise TypeError(f"query {name!r}: missing {missing}, unexpected {extra}")
    return (query.text, *(values[p] for p in query.params))
