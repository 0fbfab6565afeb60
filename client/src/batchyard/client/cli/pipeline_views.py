"""What `runs get` shows of arrays and dependencies (no SDK import at module top: the
CLI starts fast)."""

from __future__ import annotations

from typing import Any

CONDITION_WORDS = {0: "after success", 1: "after success", 2: "after any end"}
TYPE_WORDS = {0: "", 1: ", child i after child i", 2: ", child i after child i-1"}


def graph_pairs(run: Any) -> list[tuple[str, str]]:
    """`Key: value` lines for an array parent, an array child and a dependent run."""
    pairs = []
    if run.array_size and not run.parent_run:
        s = run.array_summary
        counts = [
            f"{n} {word}"
            for n, word in (
                (s.pending, "pending"),
                (s.running, "running"),
                (s.succeeded, "succeeded"),
                (s.failed, "failed"),
                (s.cancelled, "cancelled"),
            )
            if n
        ]
        pairs.append(("Array", f"{run.array_size} children: {', '.join(counts) or '-'}"))
    elif run.parent_run:
        pairs.append(("Array child", f"{run.array_index} of {run.array_size} ({run.parent_run})"))
    if run.depends_on:
        lines = [
            f"{d.run or '(its own array)'} ({CONDITION_WORDS.get(d.condition, '?')}"
            f"{TYPE_WORDS.get(d.type, '')})"
            for d in run.depends_on
        ]
        waiting = f"{run.dependencies_waiting} of {len(run.depends_on)} not met yet"
        pairs.append(("Depends on", "\n".join([*lines, waiting])))
    return pairs
