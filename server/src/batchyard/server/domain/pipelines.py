"""Array runs and dependencies: what a submission asks for, checked, and the rows and
edges it becomes (pure; storing them is db/pipelines.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from uuid import UUID

from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.graph import Condition, Kind
from batchyard.server.domain.runs import MAX_PAYLOAD_BYTES, NewRun

MIN_ARRAY = 2
MAX_ARRAY = 10_000
MAX_DEPENDENCIES = 100
MAX_BATCH_KEY = 100
MAX_SHARED_PAYLOAD_TOTAL = 64 * 1024 * 1024
MAX_EDGES = 200_000
"""Edges one call may create (an array's dependency is one edge per child)."""

WAITING = "WAITING"
"""Stored status of a run waiting on dependencies (shown as PENDING; never leased)."""
ARRAY = "ARRAY"
"""Stored status of an unfinished array parent (shown as PENDING or RUNNING)."""
PENDING = "PENDING"


@dataclass(frozen=True)
class DependencySpec:
    """One `depends_on` entry: a run by uuid, or an earlier entry of the same call."""

    path: str
    condition: Condition = Condition.SUCCEEDED
    kind: Kind = Kind.RUN
    run: UUID | None = None
    entry: int | None = None


@dataclass(frozen=True)
class Entry:
    """One validated submission of a pipeline call: a run (or an array's parent)."""

    run: NewRun
    array_size: int = 0
    payloads: tuple[bytes, ...] = ()
    depends_on: tuple[DependencySpec, ...] = ()


@dataclass
class Target:
    """A run named by uuid, as found (locked) in the database."""

    status: str
    array_size: int
    children: list[UUID] = field(default_factory=list)
    """An array's children by index (for N_TO_N)."""


@dataclass
class Rows:
    """What a pipeline call stores: runs (parallel lists) and edges. The children of an
    array share their parent's NewRun (`runs`) and differ in the other columns."""

    runs: list[NewRun] = field(default_factory=list)
    ids: list[UUID] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    request_ids: list[str | None] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    parents: list[UUID | None] = field(default_factory=list)
    indexes: list[int | None] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    edges: list[tuple[UUID, UUID, str, str, int]] = field(default_factory=list)

    def add(self, run: NewRun, status: str, size: int = 0, waiting: int = 0) -> None:
        """A single run or an array's parent (whose payload goes to its children)."""
        self.runs.append(run)
        self.ids.append(run.uuid)
        self.payloads.append(b"" if size else run.payload)
        self.request_ids.append(run.request_id or None)
        self.statuses.append(status)
        self.parents.append(None)
        self.indexes.append(None)
        self.sizes.append(size)
        self.waiting.append(waiting)

    def add_children(
        self, parent: NewRun, ids: list[UUID], payloads: list[bytes], waiting: list[int]
    ) -> None:
        n = len(ids)
        self.runs += [parent] * n
        self.ids += ids
        self.payloads += payloads
        self.request_ids += [None] * n
        self.statuses += [WAITING if w else PENDING for w in waiting]
        self.parents += [parent.uuid] * n
        self.indexes += list(range(n))
        self.sizes += [n] * n
        self.waiting += waiting


def check_array(array_size: int, payload: bytes, payloads: list[bytes]) -> list[FieldViolation]:
    out = []
    if array_size and not MIN_ARRAY <= array_size <= MAX_ARRAY:
        out.append(FieldViolation("array_size", f"{MIN_ARRAY} to {MAX_ARRAY}, or 0"))
    if array_size and payload and array_size * len(payload) > MAX_SHARED_PAYLOAD_TOTAL:
        problem = "each child stores the shared payload: at most 64 MiB for all of them"
        out.append(FieldViolation("payload", problem))
    if payloads:
        if not array_size:
            out.append(FieldViolation("payloads", "only for an array run (array_size)"))
        elif len(payloads) != array_size:
            out.append(FieldViolation("payloads", f"{len(payloads)} payloads for {array_size}"))
        if payload:
            out.append(FieldViolation("payload", "give one payload or per-child payloads"))
        for i, p in enumerate(payloads):
            if len(p) > MAX_PAYLOAD_BYTES:
                out.append(FieldViolation(f"payloads[{i}]", f"{len(p)} bytes; at most 1 MiB"))
    return out


def check_batch_key(key: str, seen: dict[str, int]) -> list[FieldViolation]:
    if not key:
        return []
    if len(key) > MAX_BATCH_KEY or any(not c.isprintable() for c in key):
        return [FieldViolation("batch_key", "at most 100 printable characters")]
    if key in seen:
        return [FieldViolation("batch_key", f"already used by requests[{seen[key]}]")]
    return []


def check_kinds(kinds: list[tuple[str, Kind]], array_size: int) -> list[FieldViolation]:
    """`kinds`: each dependency's path (relative to its request) and kind."""
    out = []
    if len(kinds) > MAX_DEPENDENCIES:
        out.append(FieldViolation("depends_on", f"at most {MAX_DEPENDENCIES} dependencies"))
    for path, kind in kinds:
        if kind != Kind.RUN and not array_size:
            out.append(FieldViolation(f"{path}.type", f"{kind} is for array runs only"))
    sequential = sum(kind == Kind.SEQUENTIAL for _, kind in kinds)
    if sequential > 1:
        out.append(FieldViolation("depends_on", "at most one SEQUENTIAL dependency"))
    return out


def _edge_rows(
    entry: Entry,
    children: list[UUID],
    target: list[UUID],
    spec: DependencySpec,
    size_of_target: int,
    pos: int,
) -> list[tuple[UUID, UUID, str, str, int]]:
    """Edges of one dependency: `target` is [the run] or, for N_TO_N, its children."""
    parent = entry.run.uuid
    cond = spec.condition.value
    if spec.kind == Kind.SEQUENTIAL:
        steps = [
            (children[i], children[i - 1], cond, "SEQUENTIAL", pos) for i in range(1, len(children))
        ]
        return [(parent, parent, cond, "SEQUENTIAL", pos), *steps]
    if spec.kind == Kind.N_TO_N:
        if size_of_target != entry.array_size:
            problem = f"N_TO_N needs an array of the same size ({entry.array_size})"
            raise InvalidArgument([FieldViolation(spec.path, problem)])
        return [(parent, target[0], cond, "N_TO_N", pos)] + [
            (children[i], target[1 + i], cond, "N_TO_N", pos) for i in range(len(children))
        ]
    own = [(parent, target[0], cond, "RUN", pos)]
    return own + [(c, target[0], cond, "RUN", pos) for c in children]


def expand(
    entries: list[Entry], ids: list[UUID], targets: dict[UUID, Target], fresh: list[bool]
) -> Rows:
    """The rows of the fresh entries. `ids` is each entry's run (fresh or found by
    request id), `targets` the runs named by uuid."""
    rows = Rows()
    children_of: dict[int, list[UUID]] = {}
    for i, entry in enumerate(entries):
        if not fresh[i]:
            continue
        children = [uuid.uuid4() for _ in range(entry.array_size)]
        children_of[i] = children
        edges: list[tuple[UUID, UUID, str, str, int]] = []
        seen: set[UUID] = set()
        for pos, spec in enumerate(entry.depends_on):
            if spec.kind == Kind.SEQUENTIAL:
                target, size = [], 0
            elif spec.entry is not None:
                other = entries[spec.entry]
                kids = children_of.get(spec.entry, [])
                target, size = [ids[spec.entry], *kids], other.array_size
            else:
                assert spec.run is not None
                found = targets[spec.run]
                target, size = [spec.run, *found.children], found.array_size
            if spec.kind != Kind.SEQUENTIAL and target[0] in seen:
                raise InvalidArgument([FieldViolation(spec.path, "named twice")])
            seen.add(target[0] if target else entry.run.uuid)
            edges += _edge_rows(entry, children, target, spec, size, pos)
        rows.edges += edges
        if len(rows.edges) > MAX_EDGES:
            raise InvalidArgument(
                [FieldViolation("depends_on", f"more than {MAX_EDGES} edges in one call")]
            )
        _add_runs(rows, entry, children, edges)
    return rows


def _add_runs(
    rows: Rows, entry: Entry, children: list[UUID], edges: list[tuple[UUID, UUID, str, str, int]]
) -> None:
    count: dict[UUID, int] = {}
    for run_id, dep, *_ in edges:
        if run_id != dep:
            count[run_id] = count.get(run_id, 0) + 1
    run = entry.run
    if not entry.array_size:
        n = count.get(run.uuid, 0)
        rows.add(run, WAITING if n else PENDING, waiting=n)
        return
    rows.add(run, ARRAY, size=entry.array_size)
    payloads = list(entry.payloads) if entry.payloads else [run.payload] * len(children)
    rows.add_children(run, children, payloads, [count.get(c, 0) for c in children])
