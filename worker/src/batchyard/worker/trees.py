"""Removing directory trees a job may have left read-only: attempt directories, the Git
cache's scratch clones. Shared by the execution and the sources, which know nothing of
each other."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _make_writable_and_retry(function: Callable[..., Any], path: str, _exc: object) -> None:
    """rmtree error handler: a job may leave read-only directories behind."""
    parent = Path(path).parent
    parent.chmod(parent.stat().st_mode | stat.S_IRWXU)
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        target.chmod(target.stat().st_mode | stat.S_IRWXU)
    function(path)


def remove_tree(root: Path) -> None:
    """Removes a directory tree, including read-only parts a job left behind."""
    try:
        shutil.rmtree(root, onerror=_make_writable_and_retry)
    except FileNotFoundError:
        return
    except OSError:
        shutil.rmtree(root, ignore_errors=True)
