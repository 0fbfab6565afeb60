"""The SDK's public surface is deliberate: `batchyard.client.__all__`, the signatures of its
classes and functions, and those of the parts a client has (`client.runs`, ...) match the
snapshot in public_api.txt; every public name has a docstring; the package is typed.

After a deliberate change: `uv run python -m tests.client.test_public_api --write`.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import batchyard.client as sdk
from batchyard.client import aio
from batchyard.client import sync as sync_sdk
from batchyard.client.core.client import ClientBase
from batchyard.client.core.logs import LogReader
from batchyard.client.core.part import Part
from batchyard.client.core.results import ResultListing
from batchyard.client.core.views import RunView

SNAPSHOT = Path(__file__).with_name("public_api.txt")
# The parts of a client, reached as attributes (`client.runs`), not imported by name.
PARTS = [
    # What the two faces share: the client's and the parts' bases, the run view, the
    # log reader, the result listing.
    ClientBase,
    Part,
    RunView,
    LogReader,
    ResultListing,
    sync_sdk.Definitions,
    sync_sdk.Runs,
    sync_sdk.Tokens,
    sync_sdk.Workspaces,
    sync_sdk.Audit,
    sync_sdk.LogsClient,
    aio.AsyncDefinitions,
    aio.AsyncRuns,
    aio.AsyncTokens,
    aio.AsyncWorkspaces,
    aio.AsyncAudit,
    aio.AsyncLogsClient,
    sync_sdk.Workers,
    aio.AsyncWorkers,
]


def _members(cls: type) -> list[tuple[str, object]]:
    found = []
    for name, value in sorted(vars(cls).items()):
        if name.startswith("_") and name not in ("__init__",):
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if callable(value) or isinstance(value, property):
            found.append((name, value))
    return found


def _signature(value: object) -> str:
    try:
        return str(inspect.signature(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def surface() -> str:
    """One line per public name, class member and signature."""
    lines = []
    classes: list[type] = []
    for name in sdk.__all__:
        value = getattr(sdk, name)
        if inspect.isclass(value):
            bases = ", ".join(b.__name__ for b in value.__bases__)
            lines.append(f"class {name}({bases})")
            classes.append(value)
        elif callable(value):
            lines.append(f"def {name}{_signature(value)}")
        else:
            lines.append(f"{name}: {type(value).__name__}")
    for cls in classes + PARTS:
        for member, value in _members(cls):
            kind = "property" if isinstance(value, property) else "method"
            shown = "" if kind == "property" else _signature(value)
            lines.append(f"{cls.__name__}.{member} [{kind}]{shown}")
    return "\n".join(lines) + "\n"


def test_the_public_surface_matches_the_snapshot() -> None:
    assert surface() == SNAPSHOT.read_text(), (
        "the SDK's public surface changed: if on purpose, run "
        "`uv run python -m tests.client.test_public_api --write` and commit public_api.txt"
    )


def test_every_public_name_has_a_docstring() -> None:
    missing = []
    for name in sdk.__all__:
        value = getattr(sdk, name)
        if (inspect.isclass(value) or callable(value)) and not inspect.getdoc(value):
            missing.append(name)
    for cls in [getattr(sdk, n) for n in sdk.__all__ if inspect.isclass(getattr(sdk, n))] + PARTS:
        for member, value in _members(cls):
            if member == "__init__" or not cls.__module__.startswith("batchyard.client"):
                continue
            if value in vars(Exception).values():
                continue
            if not (value.__doc__ or "").strip():
                missing.append(f"{cls.__name__}.{member}")
    assert missing == []
    assert sdk.__doc__ and "Client" in sdk.__doc__


def test_the_package_is_typed_and_exports_what_it_names() -> None:
    assert (Path(sdk.__file__).parent / "py.typed").exists()
    assert sorted(sdk.__all__) == sdk.__all__
    assert all(hasattr(sdk, name) for name in sdk.__all__)


if __name__ == "__main__":
    if "--write" in sys.argv:
        SNAPSHOT.write_text(surface())
    else:
        sys.stdout.write(surface())
