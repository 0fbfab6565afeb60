"""No file of the environment belongs to two distributions, and none is missing.

Installers do not warn when two distributions write the same path (e.g. `grpc-stubs` and
`types-grpcio` both ship `grpc-stubs/__init__.pyi`): whichever lands last wins, so the
environment, and what mypy says about the code, depends on the install order. This reads
every installed distribution's file list (its RECORD) and fails naming each shared file.
Uninstalling one of two such distributions deletes the other's copy too (an environment
synced before the clash was removed), so it also fails naming each listed file that is gone.
`uv run python -m tests.installed_files` (a step of tests/check.py).
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path


def clashes(distributions: Iterable[metadata.Distribution]) -> dict[Path, list[str]]:
    """Each file listed by more than one distribution, with their names, sorted. The same
    distribution found twice on the path (one name) is not a clash. Paths are compared
    normalised, not resolved (one stat per file would make this slow)."""
    owners: dict[Path, set[str]] = defaultdict(set)
    for dist in distributions:
        name = dist.metadata["Name"] or "?"
        for file in dist.files or ():
            owners[Path(os.path.normpath(str(dist.locate_file(file))))].add(name)
    return {path: sorted(names) for path, names in sorted(owners.items()) if len(names) > 1}


def missing(distributions: Iterable[metadata.Distribution]) -> dict[str, list[Path]]:
    """Each distribution with files its RECORD lists but the environment lacks (compiled
    bytecode aside: it is a cache), by name."""
    gone: dict[str, list[Path]] = {}
    for dist in distributions:
        paths = [
            Path(str(dist.locate_file(file)))
            for file in dist.files or ()
            if file.suffix != ".pyc" and "__pycache__" not in file.parts
        ]
        lost = sorted(p for p in paths if not p.exists())
        if lost:
            gone[dist.metadata["Name"] or "?"] = lost
    return gone


def main() -> int:
    dists = list(metadata.distributions())
    found, gone = clashes(dists), missing(dists)
    for path, names in found.items():
        print(f"{path}: installed by {', '.join(names)}", file=sys.stderr)
    if found:
        print(
            f"{len(found)} file(s) installed by more than one distribution: keep one provider "
            "of each (the dev group in pyproject.toml)",
            file=sys.stderr,
        )
    for name, paths in gone.items():
        print(f"{name}: {len(paths)} file(s) missing, e.g. {paths[0]}", file=sys.stderr)
    if gone:
        print(
            "reinstall them: uv sync --reinstall-package " + " --reinstall-package ".join(gone),
            file=sys.stderr,
        )
    if found or gone:
        return 1
    print("every installed file has one distribution, and is there")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
