"""Retention policies, the retention service and DeleteRuns against a real server and
PostgreSQL, with logs and result files in the artifact store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2

from batchyard.server.app import App
from batchyard.v1 import log_pb2, retention_service_pb2_grpc, run_pb2
from batchyard.v1 import retention_service_pb2 as pb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.rpc import failure
from tests.server.helpers import complete, define, fail_fields, lease, submit
from tests.server.test_results import stored

SUCCEEDED: Any = run_pb2.RUN_STATUS_SUCCEEDED
FAILED: Any = run_pb2.RUN_STATUS_FAILED


@pytest.fixture
def retention(channel: grpc.aio.Channel) -> retention_service_pb2_grpc.RetentionServiceStub:
    return retention_service_pb2_grpc.RetentionServiceStub(channel)


async def finish(runs: Any, workers: Any, root: Path, definition: str, status: int, n: int) -> str:
    """A finished run with a log line and a result file, of its own configuration."""
    run = await submit(runs, definition, overrides={"env": {"N": str(n)}})
    [leased] = await lease(workers)
    entry = log_pb2.LogEntry(
        seq=1, message=f"line {n}", stream=log_pb2.LOG_STREAM_STDOUT, level=log_pb2.LOG_LEVEL_INFO
    )
    await workers.AppendLogs(
        iter(
            [
                wpb.AppendLogsRequest(
                    run=leased.run, attempt=1, lease_id=leased.lease_id, entries=[entry]
                )
            ]
        )
    )
    extra = fail_fields() if status == FAILED else {}
    results = [stored(root, leased, "out.txt", f"result {n}".encode())]
    await complete(workers, leased, status=status, results=results, **extra)
    return run.uuid


async def counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for table in ("runs", "run_specs", "run_attempts", "run_log_chunks", "run_results"):
            out[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
        out["orphan_configs"] = await conn.fetchval(
            "SELECT count(*) FROM run_configs c"
            " WHERE NOT EXISTS (SELECT 1 FROM run_specs s WHERE s.config_id = c.id)"
        )
        return out
    finally:
        await conn.close()


async def listed(runs: Any, definition: str, status: Any) -> list[str]:
    page = await runs.ListRuns(rpb.ListRunsRequest(definition=definition, statuses=[status]))
    return [r.uuid for r in page.runs]


async def test_latest_k_per_definition_with_an_override(
    server: App, definitions: Any, runs: Any, workers: Any, retention: Any, artifacts_dir: Path
) -> None:
    await define(definitions, "job")
    await define(definitions, "other")
    made: dict[tuple[str, int], list[str]] = {}
    for n in range(24):
        definition = "job" if n % 3 else "other"
        status = SUCCEEDED if n % 2 else FAILED
        uuid = await finish(runs, workers, artifacts_dir, definition, status, n)
        made.setdefault((definition, status), []).append(uuid)
    pending = await submit(runs, "job")
    await retention.SetRetentionPolicy(
        pb.SetRetentionPolicyRequest(policy=pb.RetentionPolicy(keep_succeeded=3, keep_failed=2))
    )
    await retention.SetRetentionPolicy(
        pb.SetRetentionPolicyRequest(
            definition="other", policy=pb.RetentionPolicy(keep_succeeded=1)
        )
    )
    effective = await retention.GetRetentionPolicy(pb.GetRetentionPolicyRequest(definition="other"))
    assert (effective.effective_policy.keep_succeeded, effective.effective_policy.keep_failed) == (
        1,
        2,
    )
    assert server.retention is not None
    done = await server.retention.run_once()
    kept = {
        ("job", SUCCEEDED): 3,
        ("job", FAILED): 2,
        ("other", SUCCEEDED): 1,
        ("other", FAILED): 2,
    }
    for (definition, status), uuids in made.items():
        newest_first = list(reversed(uuids))
        assert await listed(runs, definition, status) == newest_first[: kept[definition, status]]
        for gone in newest_first[kept[definition, status] :]:
            assert not (artifacts_dir / "runs" / gone).exists()
        for stays in newest_first[: kept[definition, status]]:
            assert (
                (artifacts_dir / "runs" / stays / "1" / "out.txt")
                .read_bytes()
                .startswith(b"result")
            )
    assert done.runs == 24 - sum(kept.values())
    after = await counts(server.dsn)
    finished_left = sum(kept.values())
    assert after["runs"] == after["run_specs"] == finished_left + 1  # + the pending run
    assert after["run_attempts"] == after["run_log_chunks"] == after["run_results"] == finished_left
    assert after["orphan_configs"] == 0
    assert (await runs.GetRun(rpb.GetRunRequest(run=pending.uuid))).run.status == (
        run_pb2.RUN_STATUS_PENDING
    )


async def test_a_period_deletes_what_ended_before_it_and_nothing_unfinished(
    server: App, definitions: Any, runs: Any, workers: Any, retention: Any, artifacts_dir: Path
) -> None:
    await define(definitions)
    for n in range(5):
        await finish(runs, workers, artifacts_dir, "job", SUCCEEDED, n)
    running = await submit(runs, "job")
    await lease(workers)
    week = duration_pb2.Duration(seconds=7 * 86400)
    await retention.SetRetentionPolicy(
        pb.SetRetentionPolicyRequest(policy=pb.RetentionPolicy(keep_for=week, audit_keep_for=week))
    )
    assert server.retention is not None
    assert (await server.retention.run_once()).runs == 0  # nothing is a week old yet
    from batchyard.server.db.schedules import database_now

    assert server._pool is not None
    later = await database_now(server._pool) + timedelta(days=8)
    done = await server.retention.run_once(later)
    assert done.runs == 5
    left = await runs.ListRuns(rpb.ListRunsRequest())
    assert [r.uuid for r in left.runs] == [running.uuid]
    assert not list((artifacts_dir / "runs").iterdir())
    assert (await counts(server.dsn))["orphan_configs"] == 0


async def test_bad_policies_are_refused(retention: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await retention.SetRetentionPolicy(
            pb.SetRetentionPolicyRequest(
                policy=pb.RetentionPolicy(
                    keep_for=duration_pb2.Duration(seconds=60), keep_failed=-1
                )
            )
        )
    got = failure(info.value)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(got.fields) == {"policy.keep_for", "policy.keep_failed"}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await retention.SetRetentionPolicy(
            pb.SetRetentionPolicyRequest(definition="nope", policy=pb.RetentionPolicy())
        )
    assert failure(info.value).reason == "DEFINITION_NOT_FOUND"


async def test_delete_runs_by_filter_with_a_dry_run(
    server: App, definitions: Any, runs: Any, workers: Any, retention: Any, artifacts_dir: Path
) -> None:
    await define(definitions)
    ok = [await finish(runs, workers, artifacts_dir, "job", SUCCEEDED, n) for n in range(3)]
    bad = [await finish(runs, workers, artifacts_dir, "job", FAILED, n + 10) for n in range(2)]
    pending = await submit(runs, "job")
    succeeded = pb.DeleteRunsRequest(statuses=[SUCCEEDED], dry_run=True)
    assert (await retention.DeleteRuns(succeeded)).count == 3
    assert len((await runs.ListRuns(rpb.ListRunsRequest())).runs) == 6  # a dry run deletes nothing
    aged = pb.DeleteRunsRequest(definition="job", older_than=duration_pb2.Duration(seconds=3600))
    assert (await retention.DeleteRuns(aged)).count == 0  # nothing ended an hour ago
    succeeded.dry_run = False
    assert (await retention.DeleteRuns(succeeded)).count == 3
    assert not any((artifacts_dir / "runs" / u).exists() for u in ok)
    everything = pb.DeleteRunsRequest(definition="job")
    assert (await retention.DeleteRuns(everything)).count == 2  # never the pending run
    left = (await runs.ListRuns(rpb.ListRunsRequest())).runs
    assert [r.uuid for r in left] == [pending.uuid] and bad
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await retention.DeleteRuns(pb.DeleteRunsRequest())
    assert failure(info.value).code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await retention.DeleteRuns(pb.DeleteRunsRequest(statuses=[run_pb2.RUN_STATUS_RUNNING]))
    assert "statuses[0]" in failure(info.value).fields


async def test_deleted_runs_leave_no_files_on_s3(
    server_factory: Any, s3: Any, s3_endpoint: str, bucket: str
) -> None:
    from batchyard.client.connection import aio_channel
    from batchyard.server.artifacts.location import parse_location
    from batchyard.v1 import (
        definition_service_pb2_grpc,
        run_service_pb2_grpc,
        worker_service_pb2_grpc,
    )
    from tests.server.test_results import result

    app = await server_factory(
        artifacts=parse_location(f"s3://{bucket}/t", endpoint_url=s3_endpoint)
    )
    async with aio_channel(f"127.0.0.1:{app.port}") as channel:
        await define(definition_service_pb2_grpc.DefinitionServiceStub(channel))
        runs = run_service_pb2_grpc.RunServiceStub(channel)
        workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
        kept = ""
        for n in range(4):
            run = await submit(runs, "job")
            [leased] = await lease(workers)
            data = f"result {n}".encode()
            s3.put_object(Bucket=bucket, Key=f"t/runs/{leased.run}/1/out.txt", Body=data)
            await complete(workers, leased, results=[result("out.txt", data, 1)])
            kept = run.uuid
        retention = retention_service_pb2_grpc.RetentionServiceStub(channel)
        await retention.SetRetentionPolicy(
            pb.SetRetentionPolicyRequest(policy=pb.RetentionPolicy(keep_succeeded=1))
        )
        assert app.retention is not None
        assert (await app.retention.run_once()).runs == 3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == [f"t/runs/{kept}/1/out.txt"]


async def test_a_configuration_a_submit_is_reusing_is_not_collected(
    server: App, definitions: Any, runs: Any, workers: Any
) -> None:
    """insert_runs locks a stored configuration it reuses (ON CONFLICT DO UPDATE ...
    WHERE false); collecting skips a locked one, so no run is left without its config."""
    from batchyard.server.db.retention import collect_configs

    await define(definitions)
    run = await submit(runs, "job")
    await runs.CancelRun(rpb.CancelRunRequest(run=run.uuid))
    conn = await asyncpg.connect(server.dsn)
    try:
        config_id = await conn.fetchval("SELECT config_id FROM run_specs")
        await runs.DeleteRun(rpb.DeleteRunRequest(run=run.uuid))  # the config is orphaned
        assert server._pool is not None
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "INSERT INTO run_configs (id, config, sealed_secrets)"
            " SELECT id, config, sealed_secrets FROM run_configs WHERE id = $1"
            " ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id WHERE false",
            config_id,
        )
        assert await collect_configs(server._pool, [config_id]) == 0  # in use: skipped
        await tx.rollback()
        assert await collect_configs(server._pool, [config_id]) == 1
    finally:
        await conn.close()
