"""Pipeline submissions: array runs and dependencies on SubmitRun and BatchSubmitRuns
(entries may depend on earlier entries of the same call), checked field by field."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.graph import Condition, Kind
from batchyard.server.domain.pipelines import (
    DependencySpec,
    Entry,
    check_array,
    check_batch_key,
    check_kinds,
)
from batchyard.server.domain.runs import NewRun
from batchyard.v1 import pipeline_pb2
from batchyard.v1 import run_service_pb2 as pb

NewRunOf = Callable[[pb.SubmitRunRequest], Awaitable[NewRun]]

CONDITIONS = {
    pipeline_pb2.DEPENDENCY_CONDITION_UNSPECIFIED: Condition.SUCCEEDED,
    pipeline_pb2.DEPENDENCY_CONDITION_AFTER_SUCCESS: Condition.SUCCEEDED,
    pipeline_pb2.DEPENDENCY_CONDITION_AFTER_ANY: Condition.ANY,
}
KINDS = {
    pipeline_pb2.DEPENDENCY_TYPE_UNSPECIFIED: Kind.RUN,
    pipeline_pb2.DEPENDENCY_TYPE_N_TO_N: Kind.N_TO_N,
    pipeline_pb2.DEPENDENCY_TYPE_SEQUENTIAL: Kind.SEQUENTIAL,
}


def is_pipeline(request: pb.SubmitRunRequest) -> bool:
    """Whether a submission needs the pipeline path (else the plain, batched one)."""
    return bool(request.array_size or request.payloads or request.depends_on or request.batch_key)


class _Batch:
    """The entries of one call so far: keys seen, and each entry's array size."""

    def __init__(self, in_batch: bool) -> None:
        self.in_batch = in_batch
        self.keys: dict[str, int] = {}
        self.sizes: list[int] = []


def _target(
    d: pipeline_pb2.RunDependency, path: str, index: int, batch: _Batch
) -> tuple[DependencySpec | None, list[FieldViolation]]:
    """The dependency `d` at `path` (relative) of entry `index`: a spec whose path is
    from the call, or violations with relative paths."""
    full = f"requests[{index}].{path}" if batch.in_batch else path
    condition, kind = CONDITIONS.get(d.condition), KINDS.get(d.type)
    bad = []
    if condition is None:
        bad.append(FieldViolation(f"{path}.condition", "unknown dependency condition"))
    if kind is None:
        bad.append(FieldViolation(f"{path}.type", "unknown dependency type"))
    named = [n for n in ("run", "batch_index", "batch_key") if _has(d, n)]
    if kind == Kind.SEQUENTIAL and named:
        bad.append(FieldViolation(f"{path}.{named[0]}", "SEQUENTIAL names no run"))
    elif kind != Kind.SEQUENTIAL and len(named) != 1:
        bad.append(FieldViolation(path, "exactly one of run, batch_index or batch_key"))
    if bad or condition is None or kind is None:
        return None, bad
    spec = DependencySpec(path=full, condition=condition, kind=kind)
    if not named:
        return spec, []
    if named[0] == "run":
        try:
            return DependencySpec(full, condition, kind, run=UUID(d.run)), []
        except ValueError:
            return None, [FieldViolation(f"{path}.run", "not a valid run uuid")]
    if not batch.in_batch:
        return None, [FieldViolation(f"{path}.{named[0]}", "only in BatchSubmitRuns")]
    if named[0] == "batch_index":
        entry = d.batch_index
        if not 0 <= entry < index:
            problem = "must name an earlier entry of this call (no forward references or cycles)"
            return None, [FieldViolation(f"{path}.batch_index", problem)]
    else:
        if d.batch_key not in batch.keys:
            problem = "no earlier entry of this call has this batch_key (no forward references)"
            return None, [FieldViolation(f"{path}.batch_key", problem)]
        entry = batch.keys[d.batch_key]
    if kind == Kind.N_TO_N and batch.sizes[entry] != _size_of(index, batch):
        problem = f"N_TO_N needs an array of the same size (requests[{entry}] differs)"
        return None, [FieldViolation(f"{path}.type", problem)]
    return DependencySpec(full, condition, kind, entry=entry), []


def _size_of(index: int, batch: _Batch) -> int:
    return batch.sizes[index] if index < len(batch.sizes) else 0


def _has(d: pipeline_pb2.RunDependency, name: str) -> bool:
    return d.HasField("batch_index") if name == "batch_index" else bool(getattr(d, name))


async def entry_of(
    request: pb.SubmitRunRequest, index: int, batch: _Batch, new_run: NewRunOf
) -> Entry:
    """One checked entry; violations name fields of the SubmitRunRequest."""
    violations: list[FieldViolation] = []
    try:
        run = await new_run(request)
    except InvalidArgument as exc:
        violations += exc.violations
        run = None
    payloads = list(request.payloads)
    violations += check_array(request.array_size, request.payload, payloads)
    violations += check_batch_key(request.batch_key, batch.keys)
    batch.sizes.append(request.array_size)
    specs = []
    for j, d in enumerate(request.depends_on):
        spec, bad = _target(d, f"depends_on[{j}]", index, batch)
        violations += bad
        if spec is not None:
            specs.append(spec)
    kinds = [
        (f"depends_on[{j}]", KINDS.get(d.type, Kind.RUN)) for j, d in enumerate(request.depends_on)
    ]
    violations += check_kinds(kinds, request.array_size)
    if request.batch_key:
        batch.keys.setdefault(request.batch_key, index)
    if violations or run is None:
        raise InvalidArgument(violations)
    return Entry(run, request.array_size, tuple(payloads), tuple(specs))


async def entries_of(requests: list[pb.SubmitRunRequest], new_run: NewRunOf) -> list[Entry]:
    """Every entry of a BatchSubmitRuns call, or the violations of all of them."""
    batch = _Batch(in_batch=True)
    out, violations = [], []
    for i, request in enumerate(requests):
        try:
            out.append(await entry_of(request, i, batch, new_run))
        except InvalidArgument as exc:
            violations += exc.under(f"requests[{i}]").violations
    if violations:
        raise InvalidArgument(violations)
    return out


async def single_entry(request: pb.SubmitRunRequest, new_run: NewRunOf) -> Entry:
    return await entry_of(request, 0, _Batch(in_batch=False), new_run)
