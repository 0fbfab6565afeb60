"""Definitions given as a message, a mapping or a file, for `client.definitions`.

A mapping is the protobuf JSON mapping of `batchyard.v1.Definition` (camelCase or
snake_case field names), as a definition file holds it in JSON or YAML and as
`batchyard definitions get -o json` prints it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from google.protobuf import json_format

from batchyard.v1 import definition_pb2

Definition = definition_pb2.Definition
DefinitionSpec: TypeAlias = "definition_pb2.Definition | Mapping[str, Any] | str | os.PathLike[str]"
"""A Definition message, a mapping of its fields, or the path of a JSON or YAML file."""

# The top-level Definition fields an update may replace as a whole.
UPDATABLE_FIELDS = ("name", "description", "config")


def plain(value: Any) -> Any:
    """YAML values as the JSON mapping expects them: unquoted timestamps become strings."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of Definition fields")
    return data


def load_definition(spec: DefinitionSpec) -> tuple[Definition, list[str]]:
    """The Definition `spec` describes, and the updatable top-level fields it sets
    (the default update mask). ValueError if it is not a valid definition; OSError if
    the file cannot be read."""
    if isinstance(spec, Definition):
        set_ = {"name": bool(spec.name), "description": bool(spec.description)}
        set_["config"] = spec.HasField("config")
        return spec, [f for f in UPDATABLE_FIELDS if set_[f]]
    data = dict(spec) if isinstance(spec, Mapping) else _read(Path(spec))
    definition = Definition()
    try:
        json_format.ParseDict(plain(data), definition)
    except json_format.ParseError as exc:
        raise ValueError(f"not a valid definition: {str(exc).splitlines()[0]}") from None
    return definition, [f for f in UPDATABLE_FIELDS if f in data]
