"""What a run shows of the graph it is in: its dependencies and, for an array, its
children counted by status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Condition(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    ANY = "ANY"


class Kind(StrEnum):
    RUN = "RUN"
    N_TO_N = "N_TO_N"
    SEQUENTIAL = "SEQUENTIAL"


@dataclass(frozen=True)
class Dependency:
    """A stored dependency, as shown on a run."""

    run: UUID
    condition: Condition
    kind: Kind
    met: bool


@dataclass(frozen=True)
class ArraySummary:
    size: int
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    started: int = 0
    progress: int = 0
