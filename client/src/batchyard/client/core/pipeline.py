"""`Pipeline`: the entries of one BatchSubmitRuns call, where later entries depend on
earlier ones (a DAG, a fan-out and fan-in) — the whole pipeline is submitted atomically.

    pipe = client.runs.pipeline()
    extract = pipe.add("extract")
    parts = pipe.add("transform", array_size=10, depends_on=[extract])
    pipe.add("load", depends_on=[parts])
    runs = pipe.submit()          # one Run per entry, in order
"""

from __future__ import annotations

from typing import Any

from batchyard.client.core.requests import Step, submit_request
from batchyard.v1 import run_service_pb2 as rpb


class PipelineBuilder:
    """Collects the entries; `submit` (given by the sync or asyncio face) sends them."""

    def __init__(self) -> None:
        self._requests: list[rpb.SubmitRunRequest] = []

    def add(self, definition: str | None = None, **options: Any) -> Step:
        """Add a run (the options of `Runs.submit`; `depends_on` may name earlier
        steps) and return its step."""
        for ref in options.get("depends_on", ()):
            target = ref[0] if isinstance(ref, tuple) else ref
            if isinstance(target, Step) and not 0 <= target.index < len(self._requests):
                raise ValueError(f"step {target.index} is not an earlier step of this pipeline")
        self._requests.append(submit_request(definition, **options))
        return Step(len(self._requests) - 1)

    def request(self) -> rpb.BatchSubmitRunsRequest:
        """The BatchSubmitRuns request of the steps so far."""
        if not self._requests:
            raise ValueError("an empty pipeline: add a step first")
        return rpb.BatchSubmitRunsRequest(requests=self._requests)

    def __len__(self) -> int:
        return len(self._requests)
