"""Bounds every request obeys before a method runs: each Duration is one the protobuf
spec allows (nanos within ±999,999,999 with the sign of the seconds), and repeated
filters are bounded (LeaseRuns queues, ListRuns statuses) — refused with the field."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2

from batchyard.server.api.durations import bad_durations, duration_problem
from batchyard.v1 import definition_pb2, job_pb2, run_pb2
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.rpc import failure


@pytest.mark.parametrize(
    ("seconds", "nanos", "ok"),
    [
        (1, 500_000_000, True),
        (-1, -500_000_000, True),
        (0, -999_999_999, True),
        (315_576_000_000, 999_999_999, True),
        (1, 1_000_000_000, False),
        (1, -2_000_000_000, False),
        (1, -1, False),
        (-1, 1, False),
        (315_576_000_001, 0, False),
    ],
)
def test_duration_rules(seconds: int, nanos: int, ok: bool) -> None:
    assert (duration_problem(seconds, nanos) is None) is ok


def test_paths_name_nested_repeated_and_map_fields() -> None:
    bad = duration_pb2.Duration(seconds=1, nanos=-2_000_000_000)
    request = rpb.BatchSubmitRunsRequest(
        requests=[
            rpb.SubmitRunRequest(definition="a"),
            rpb.SubmitRunRequest(definition="b", overrides=run_pb2.RunOverrides(timeout=bad)),
        ]
    )
    assert [v.field for v in bad_durations(request)] == ["requests[1].overrides.timeout"]
    fine = rpb.SubmitRunRequest(definition="a")
    assert bad_durations(fine) == []


async def test_an_out_of_range_duration_is_refused_with_its_field(definitions) -> None:
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source_location="true",
        timeout=duration_pb2.Duration(seconds=5, nanos=-2_000_000_000),
    )
    request = dpb.CreateDefinitionRequest(
        definition=definition_pb2.Definition(name="odd", config=config)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await definitions.CreateDefinition(request)
    refused = failure(caught.value)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.reason == "INVALID_FIELD"
    assert set(refused.fields) == {"definition.config.timeout"}
    listed = await definitions.ListDefinitions(dpb.ListDefinitionsRequest())
    assert [d.name for d in listed.definitions] == []


async def test_status_filters_are_bounded(runs) -> None:
    request = rpb.ListRunsRequest(statuses=[run_pb2.RUN_STATUS_PENDING] * 50_000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.ListRuns(request)
    refused = failure(caught.value)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused.fields) == {"statuses"}


async def test_lease_queues_are_bounded(workers) -> None:
    request = wpb.LeaseRunsRequest(
        worker_id="w1", queues=[f"q{i}" for i in range(100_000)], max_runs=1
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await workers.LeaseRuns(request)
    refused = failure(caught.value)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(refused.fields) == {"queues"}
