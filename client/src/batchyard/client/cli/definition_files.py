"""Definition files: the protobuf JSON mapping of `Definition`, written as JSON or YAML.

Field names may be camelCase (as `get -o json` prints them) or snake_case.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from batchyard.client.cli.failures import UsageError
from batchyard.client.specs import UPDATABLE_FIELDS, plain
from batchyard.v1 import definition_pb2

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class DefinitionFile:
    """A parsed definition file: the message, and which updatable fields it sets."""

    definition: definition_pb2.Definition
    fields: tuple[str, ...]

    def default_mask(self) -> list[str]:
        """The update mask when none is given: the updatable fields the file sets."""
        return list(self.fields)


def read_definition_file(path: str) -> DefinitionFile:
    """Read and parse the file at `path` ("-" for stdin); UsageError if it is unusable."""
    source = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {source}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    return parse_definition(text, source)


def parse_definition(text: str, source: str) -> DefinitionFile:
    """Parse JSON or YAML text into a Definition; UsageError naming `source` if invalid."""
    data = _load(text, source)
    if data is None:
        raise UsageError(f"{source} is empty")
    if not isinstance(data, dict):
        raise UsageError(
            f"{source}: expected a mapping of Definition fields, got {type(data).__name__}"
        )
    definition = definition_pb2.Definition()
    try:
        json_format.ParseDict(plain(data), definition)
    except (json_format.ParseError, TypeError, ValueError) as exc:
        raise UsageError(f"{source}: not a valid definition: {_first_line(exc)}") from None
    fields = tuple(field for field in UPDATABLE_FIELDS if field in data)
    return DefinitionFile(definition, fields)


def parse_mask(text: str) -> list[str]:
    """'name, config.sourceLocation' → ['name', 'config.source_location']."""
    paths = [_snake_path(p.strip()) for p in text.split(",") if p.strip()]
    if not paths:
        raise UsageError("--mask names no field")
    return paths


def _snake_path(path: str) -> str:
    return ".".join(re.sub(r"(?<!^)(?=[A-Z])", "_", part).lower() for part in path.split("."))


def _load(text: str, source: str) -> Any:
    as_json = source.lower().endswith(".json") or (
        not source.lower().endswith(YAML_SUFFIXES) and text.lstrip().startswith("{")
    )
    if as_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{source}: not valid JSON: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(exc)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().split("\n", 1)[0]
