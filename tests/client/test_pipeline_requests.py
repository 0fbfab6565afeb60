"""The SDK's pipeline builders: depends_on entries and pipeline steps as the request says
them (no server: these are the messages the calls send)."""

from __future__ import annotations

import pytest

from batchyard.client.core.pipeline import PipelineBuilder
from batchyard.client.core.requests import Step, dependency, submit_request
from batchyard.v1 import pipeline_pb2, run_pb2

RUN = "0b9e3d4c-8f4a-4f3e-9d0e-2a1b3c4d5e6f"


def test_dependency_reads_runs_handles_steps_and_words():
    assert dependency(RUN) == pipeline_pb2.RunDependency(run=RUN)
    assert dependency(run_pb2.Run(uuid=RUN)).run == RUN
    got = dependency((RUN, "any"))
    assert got.run == RUN and got.condition == pipeline_pb2.DEPENDENCY_CONDITION_AFTER_ANY
    got = dependency((Step(2), "n_to_n"))
    assert got.batch_index == 2 and got.type == pipeline_pb2.DEPENDENCY_TYPE_N_TO_N
    assert dependency("sequential") == pipeline_pb2.RunDependency(
        type=pipeline_pb2.DEPENDENCY_TYPE_SEQUENTIAL
    )
    with pytest.raises(ValueError, match="unknown dependency word"):
        dependency((RUN, "maybe"))
    with pytest.raises(ValueError, match="not a run"):
        dependency(object())


def test_submit_request_carries_array_payloads_and_dependencies():
    request = submit_request(
        "part", array_size=2, payloads=["a", {"k": 1}], depends_on=[RUN, (RUN, "any")]
    )
    assert request.array_size == 2 and list(request.payloads) == [b"a", b'{"k": 1}']
    assert [d.condition for d in request.depends_on] == [
        pipeline_pb2.DEPENDENCY_CONDITION_UNSPECIFIED,
        pipeline_pb2.DEPENDENCY_CONDITION_AFTER_ANY,
    ]


def test_a_pipeline_refers_to_earlier_steps_by_index():
    pipe = PipelineBuilder()
    first = pipe.add("extract")
    second = pipe.add("transform", depends_on=[first])
    pipe.add("load", depends_on=[first, (second, "any")])
    request = pipe.request()
    assert [len(r.depends_on) for r in request.requests] == [0, 1, 2]
    assert [d.batch_index for d in request.requests[2].depends_on] == [0, 1]
    with pytest.raises(ValueError, match="not an earlier step"):
        pipe.add("later", depends_on=[Step(7)])
    with pytest.raises(ValueError, match="empty pipeline"):
        PipelineBuilder().request()
