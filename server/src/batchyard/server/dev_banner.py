"""The few lines `batchyard dev` prints once everything is up: where it serves, where the
token is, and two commands to try. Other parts add their own lines at the end of
`extra_lines` (the web console's link, once it is served)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO


def extra_lines(port: int) -> list[str]:
    """More "name: value" lines for the banner, e.g. ("console", "http://…"): each part
    that serves something of its own appends a line here."""
    del port
    return []


def ready_banner(
    port: int, token_file: Path, *, demo: bool = False, extra: list[str] | None = None
) -> str:
    home = str(Path.home())
    token = str(token_file)
    token = "~" + token[len(home) :] if token.startswith(home + "/") else token
    lines = [
        "batchyard dev is ready (Ctrl-C stops it)",
        f"  gRPC:   127.0.0.1:{port}",
        f"  token:  {token} (the CLI on this machine finds it by itself)",
        *(f"  {line}" for line in (extra if extra is not None else extra_lines(port))),
        *_activate_hint(),
        "  try:    batchyard runs list",
        "          batchyard runs submit hello --wait --follow"
        if demo
        else "          batchyard definitions create -f job.yaml   # see the README's tour",
    ]
    return "\n".join(lines)


def _activate_hint() -> list[str]:
    """In a checkout run with `uv run`, `batchyard` is on the PATH of this process only:
    another terminal needs the virtual environment first."""
    venv = Path(sys.prefix)
    if venv.name != ".venv" or os.environ.get("VIRTUAL_ENV_PROMPT"):
        return []
    where = os.path.relpath(venv, Path.cwd()) if venv.is_relative_to(Path.cwd()) else venv
    return [f"  then, in another terminal: source {where}/bin/activate"]


def print_banner(
    port: int,
    token_file: Path,
    *,
    demo: bool,
    out: TextIO | None = None,
    extra: list[str] | None = None,
) -> None:
    banner = ready_banner(port, token_file, demo=demo, extra=extra)
    print(banner, file=out or sys.stderr, flush=True)
