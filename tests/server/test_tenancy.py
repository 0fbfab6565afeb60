"""Tenancy: a workspace's token never sees or touches another workspace's objects, and
each role calls only what it may. The cases are checked against the service descriptors,
so a new RPC without a case fails here."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import status_pb2

from batchyard.client.connection import aio_channel
from batchyard.server.app import SERVICES, App
from batchyard.v1 import access_pb2 as apb
from batchyard.v1 import (
    access_service_pb2,
    fleet_service_pb2,
    log_pb2,
    log_service_pb2,
    queue_pb2,
    result_pb2,
    run_pb2,
    worker_control_pb2,
)
from batchyard.v1 import definition_pb2 as dpb
from batchyard.v1 import definition_service_pb2 as dspb
from batchyard.v1 import queue_service_pb2 as qspb
from batchyard.v1 import retention_service_pb2 as retpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import schedule_pb2 as spb
from batchyard.v1 import schedule_service_pb2 as sspb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.connect_channel import ConnectChannel
from tests.rpc import API_MODULES, methods_of
from tests.server.helpers import shell_config

pytestmark = pytest.mark.server(http_listen="127.0.0.1:0")

METHODS: dict[str, MethodDescriptor] = {
    f"{m.containing_service.name}/{m.name}": m for m in methods_of(*API_MODULES)
}


Dial = Callable[[str | None], Any]


@pytest.fixture(params=["grpc", "http"])
def dial(request: pytest.FixtureRequest, server: App, target: str) -> Dial:
    """Opens a channel with a token (None: none) over gRPC or over the HTTP port (Connect,
    binary protobuf; the worker's service, gRPC-only, still goes to the gRPC port)."""

    def open_channel(token: str | None) -> Any:
        if request.param == "grpc":
            return aio_channel(target, token=token) if token else grpc.aio.insecure_channel(target)
        assert server.http is not None
        return ConnectChannel(f"http://127.0.0.1:{server.http.port}", target, token)

    return open_channel


def test_every_served_service_is_covered() -> None:
    covered = {m.containing_service.full_name for m in methods_of(*API_MODULES)}
    assert covered == set(SERVICES)


async def invoke(channel: grpc.aio.Channel, method: MethodDescriptor, request: Any) -> Any:
    """Calls any method generically; a streaming response is read to its end."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    out = message_factory.GetMessageClass(method.output_type)
    serialize, parse = (lambda m: m.SerializeToString()), out.FromString
    if method.client_streaming:
        requests = request if isinstance(request, list) else [request]
        call = channel.stream_unary(path, serialize, parse)(iter(requests), timeout=10)
        return await call
    if method.server_streaming:
        stream = channel.unary_stream(path, serialize, parse)(request, timeout=10)
        return [item async for item in stream]
    return await channel.unary_unary(path, serialize, parse)(request, timeout=10)


def empty_request(method: MethodDescriptor) -> Any:
    return message_factory.GetMessageClass(method.input_type)()


@dataclass
class Refusal:
    """What a call answered: its code and its rich status, with the ids it echoed
    replaced (the answer for an object of another workspace must equal the answer for a
    missing one, except for echoing the id that was sent)."""

    code: grpc.StatusCode
    details: str
    status: bytes


async def refusal(call: Awaitable[Any], ids: list[str]) -> Refusal:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        status = status_pb2.Status()
        trailing: Any = exc.trailing_metadata() or ()
        for key, value in trailing:
            if key == "grpc-status-details-bin":
                status.ParseFromString(value)
        details = exc.details() or ""
        for text in ids:
            details = details.replace(text, "<ID>")
            status.message = status.message.replace(text, "<ID>")
        return Refusal(exc.code(), details, status.SerializeToString(deterministic=True))
    raise AssertionError("the call succeeded")


@dataclass
class Victim:
    """Workspace beta's objects."""

    token: str
    definition: dpb.Definition
    running: wpb.LeasedRun
    finished: str
    pending: str
    viewer: apb.Token
    schedule: str = ""


async def new_workspace(operator: grpc.aio.Channel, name: str) -> str:
    created = await invoke(
        operator,
        METHODS["WorkspaceService/CreateWorkspace"],
        access_service_pb2.CreateWorkspaceRequest(name=name),
    )
    secret: str = created.admin_secret
    return secret


@pytest.fixture
async def tenants(channel: grpc.aio.Channel, target: str, artifacts_dir: Path) -> Any:
    alpha = await new_workspace(channel, "alpha")
    beta = await new_workspace(channel, "beta")
    async with aio_channel(target, token=beta) as victim:
        definition = (
            await invoke(
                victim,
                METHODS["DefinitionService/CreateDefinition"],
                dspb.CreateDefinitionRequest(
                    definition=dpb.Definition(name="shared-name", config=shell_config())
                ),
            )
        ).definition

        async def submit() -> str:
            run = await invoke(
                victim,
                METHODS["RunService/SubmitRun"],
                rpb.SubmitRunRequest(definition="shared-name"),
            )
            return str(run.run.uuid)

        async def lease() -> wpb.LeasedRun:
            reply = await invoke(
                victim,
                METHODS["WorkerService/LeaseRuns"],
                wpb.LeaseRunsRequest(
                    worker_id="beta-w", queues=["default"], max_runs=1, wait=duration_pb2.Duration()
                ),
            )
            leased: wpb.LeasedRun = reply.runs[0]
            return leased

        await invoke(
            victim,
            METHODS["QueueService/CreateQueue"],
            qspb.CreateQueueRequest(queue=queue_pb2.Queue(name="beta-queue")),
        )
        finished = await submit()
        done = await lease()
        data = b"beta's result"
        path = artifacts_dir / "runs" / done.run / "1" / "out.txt"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        await invoke(
            victim,
            METHODS["WorkerService/CompleteRun"],
            wpb.CompleteRunRequest(
                run=done.run,
                attempt=1,
                lease_id=done.lease_id,
                status=run_pb2.RUN_STATUS_SUCCEEDED,
                results=[
                    result_pb2.RunResult(
                        name="out.txt",
                        size_bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest(),
                        media_type="text/plain",
                        attempt=1,
                    )
                ],
            ),
        )
        await submit()
        running = await lease()
        pending = await submit()
        viewer = (
            await invoke(
                victim,
                METHODS["TokenService/CreateToken"],
                access_service_pb2.CreateTokenRequest(
                    name="beta-viewer", role=apb.TOKEN_ROLE_VIEWER
                ),
            )
        ).token
        schedule = (
            await invoke(
                victim,
                METHODS["ScheduleService/CreateSchedule"],
                sspb.CreateScheduleRequest(
                    schedule=spb.Schedule(definition="shared-name", cron="@yearly")
                ),
            )
        ).schedule.uuid
    return alpha, Victim(beta, definition, running, finished, pending, viewer, schedule)


def log_batch(run: str, lease: str) -> wpb.AppendLogsRequest:
    return wpb.AppendLogsRequest(
        run=run,
        attempt=1,
        lease_id=lease,
        entries=[
            log_pb2.LogEntry(
                seq=1,
                message="planted",
                stream=log_pb2.LOG_STREAM_STDOUT,
                level=log_pb2.LOG_LEVEL_INFO,
            )
        ],
    )


def fence_requests(v: Victim) -> dict[str, Callable[[str, str], Any]]:
    """Requests on a running run, by (run, lease id)."""
    return {
        "WorkerService/RenewLease": lambda run, lease: wpb.RenewLeaseRequest(
            run=run, attempt=1, lease_id=lease
        ),
        "WorkerService/AppendLogs": log_batch,
        "WorkerService/CompleteRun": lambda run, lease: wpb.CompleteRunRequest(
            run=run, attempt=1, lease_id=lease, status=run_pb2.RUN_STATUS_SUCCEEDED
        ),
        "WorkerService/ReleaseRun": lambda run, lease: wpb.ReleaseRunRequest(
            run=run, attempt=1, lease_id=lease
        ),
        "WorkerService/WaitForCancel": lambda run, lease: worker_control_pb2.WaitForCancelRequest(
            run=run, attempt=1, lease_id=lease, wait=duration_pb2.Duration(seconds=0)
        ),
    }


def ref_requests(v: Victim) -> dict[str, tuple[Callable[[str], Any], str, str]]:
    """Requests naming one object: (build from a ref, the victim's ref, a missing ref)."""
    missing_run = str(uuid.uuid4())
    missing_def = str(uuid.uuid4())
    run, done, definition = v.running.run, v.finished, v.definition.uuid
    return {
        "DefinitionService/GetDefinition": (
            lambda ref: dspb.GetDefinitionRequest(definition=ref),
            "shared-name",
            "missing-name",
        ),
        "DefinitionService/UpdateDefinition": (
            lambda ref: dspb.UpdateDefinitionRequest(
                definition=ref,
                changes=dpb.Definition(description="taken over"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            definition,
            missing_def,
        ),
        "DefinitionService/DeleteDefinition": (
            lambda ref: dspb.DeleteDefinitionRequest(definition=ref),
            definition,
            missing_def,
        ),
        "RunService/SubmitRun": (
            lambda ref: rpb.SubmitRunRequest(definition=ref),
            "shared-name",
            "missing-name",
        ),
        "RunService/BatchSubmitRuns": (
            lambda ref: rpb.BatchSubmitRunsRequest(requests=[rpb.SubmitRunRequest(definition=ref)]),
            definition,
            missing_def,
        ),
        "RunService/GetRun": (lambda ref: rpb.GetRunRequest(run=ref), run, missing_run),
        "RunService/CancelRun": (lambda ref: rpb.CancelRunRequest(run=ref), run, missing_run),
        "RunService/DeleteRun": (lambda ref: rpb.DeleteRunRequest(run=ref), done, missing_run),
        "RunService/WatchRun": (lambda ref: rpb.WatchRunRequest(run=ref), run, missing_run),
        "RunService/ListRunResults": (
            lambda ref: rpb.ListRunResultsRequest(run=ref),
            done,
            missing_run,
        ),
        "RunService/DownloadRunResult": (
            lambda ref: rpb.DownloadRunResultRequest(run=ref, name="out.txt"),
            done,
            missing_run,
        ),
        "LogService/GetLogs": (
            lambda ref: log_service_pb2.GetLogsRequest(run=ref),
            run,
            missing_run,
        ),
        "LogService/TailLogs": (
            lambda ref: log_service_pb2.TailLogsRequest(run=ref),
            done,
            missing_run,
        ),
        **schedule_refs(v),
        "TokenService/RevokeToken": (
            lambda ref: access_service_pb2.RevokeTokenRequest(token=ref),
            v.viewer.prefix,
            "byt_000000000000",
        ),
        "QueueService/GetQueue": (
            lambda ref: qspb.GetQueueRequest(queue=ref),
            "beta-queue",
            "missing-queue",
        ),
        "QueueService/UpdateQueue": (
            lambda ref: qspb.UpdateQueueRequest(
                queue=ref,
                changes=queue_pb2.Queue(state=queue_pb2.QUEUE_STATE_PAUSED),
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
            ),
            "beta-queue",
            "missing-queue",
        ),
        "QueueService/DeleteQueue": (
            lambda ref: qspb.DeleteQueueRequest(queue=ref),
            "beta-queue",
            "missing-queue",
        ),
        "FleetService/GetWorker": (
            lambda ref: fleet_service_pb2.GetWorkerRequest(worker_id=ref),
            "beta-w",
            "no-such-worker",
        ),
    }


def schedule_refs(v: Victim) -> dict[str, tuple[Callable[[str], Any], str, str]]:
    missing = str(uuid.uuid4())
    by_ref = {
        "GetSchedule": sspb.GetScheduleRequest,
        "DeleteSchedule": sspb.DeleteScheduleRequest,
        "PauseSchedule": sspb.PauseScheduleRequest,
        "ResumeSchedule": sspb.ResumeScheduleRequest,
        "TriggerSchedule": sspb.TriggerScheduleRequest,
    }
    out: dict[str, tuple[Callable[[str], Any], str, str]] = {}
    for name, make in by_ref.items():

        def build(ref: str, make: Any = make) -> Any:
            return make(schedule=ref)

        out[f"ScheduleService/{name}"] = (build, v.schedule, missing)
    out["ScheduleService/UpdateSchedule"] = (
        lambda ref: sspb.UpdateScheduleRequest(
            schedule=ref,
            values=spb.Schedule(note="taken over"),
            update_mask=field_mask_pb2.FieldMask(paths=["note"]),
        ),
        v.schedule,
        missing,
    )
    out["RetentionService/GetRetentionPolicy"] = (
        lambda ref: retpb.GetRetentionPolicyRequest(definition=ref),
        "shared-name",
        "missing-name",
    )
    out["RetentionService/SetRetentionPolicy"] = (
        lambda ref: retpb.SetRetentionPolicyRequest(
            definition=ref, policy=retpb.RetentionPolicy(keep_succeeded=0)
        ),
        v.definition.uuid,
        missing,
    )
    out["ScheduleService/CreateSchedule"] = (
        lambda ref: sspb.CreateScheduleRequest(
            schedule=spb.Schedule(definition=ref, cron="@daily")
        ),
        "shared-name",
        "missing-name",
    )
    return out


async def test_another_workspace_is_invisible(
    tenants: Any, target: str, channel: grpc.aio.Channel, dial: Dial
) -> None:
    alpha, v = tenants
    refs, fences = ref_requests(v), fence_requests(v)
    visible_checks: dict[str, Callable[[grpc.aio.Channel], Awaitable[None]]] = {}

    async def no_victim_definitions(ch: grpc.aio.Channel) -> None:
        listed = await invoke(
            ch, METHODS["DefinitionService/ListDefinitions"], dspb.ListDefinitionsRequest()
        )
        assert v.definition.uuid not in {d.uuid for d in listed.definitions}

    async def create_same_name(ch: grpc.aio.Channel) -> None:  # no ALREADY_EXISTS leak
        await invoke(
            ch,
            METHODS["DefinitionService/CreateDefinition"],
            dspb.CreateDefinitionRequest(
                definition=dpb.Definition(name="shared-name", config=shell_config())
            ),
        )

    async def no_victim_runs(ch: grpc.aio.Channel) -> None:
        listed = await invoke(ch, METHODS["RunService/ListRuns"], rpb.ListRunsRequest())
        assert not {r.uuid for r in listed.runs} & {v.running.run, v.finished, v.pending}

    async def leases_nothing(ch: grpc.aio.Channel) -> None:
        reply = await invoke(
            ch,
            METHODS["WorkerService/LeaseRuns"],
            wpb.LeaseRunsRequest(
                worker_id="thief", queues=["default"], max_runs=10, wait=duration_pb2.Duration()
            ),
        )
        assert not reply.runs

    async def own_tokens_only(ch: grpc.aio.Channel) -> None:
        await invoke(
            ch,
            METHODS["TokenService/CreateToken"],
            access_service_pb2.CreateTokenRequest(name="alpha-ci", role=apb.TOKEN_ROLE_MEMBER),
        )
        listed = await invoke(
            ch,
            METHODS["TokenService/ListTokens"],
            access_service_pb2.ListTokensRequest(show_inactive=True),
        )
        assert {t.workspace for t in listed.tokens} == {"alpha"}
        assert v.viewer.prefix not in {t.prefix for t in listed.tokens}

    async def cannot_create_workspaces(ch: grpc.aio.Channel) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await invoke(
                ch,
                METHODS["WorkspaceService/CreateWorkspace"],
                access_service_pb2.CreateWorkspaceRequest(name="gamma"),
            )
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def own_workspace_only(ch: grpc.aio.Channel) -> None:
        listed = await invoke(
            ch,
            METHODS["WorkspaceService/ListWorkspaces"],
            access_service_pb2.ListWorkspacesRequest(),
        )
        assert [w.name for w in listed.workspaces] == ["alpha"]

    async def own_audit_only(ch: grpc.aio.Channel) -> None:
        listed = await invoke(
            ch, METHODS["AuditService/ListAuditEvents"], access_service_pb2.ListAuditEventsRequest()
        )
        victim_ids = {v.definition.uuid, v.running.run, v.finished, v.pending, v.viewer.prefix}
        assert listed.events and not {e.object_id for e in listed.events} & victim_ids

    async def no_victim_queues(ch: grpc.aio.Channel) -> None:
        listed = await invoke(ch, METHODS["QueueService/ListQueues"], qspb.ListQueuesRequest())
        assert [q.name for q in listed.queues] == ["default"]
        assert {q.workspace for q in listed.queues} == {"alpha"}

    async def create_same_queue(ch: grpc.aio.Channel) -> None:  # no ALREADY_EXISTS leak
        await invoke(
            ch,
            METHODS["QueueService/CreateQueue"],
            qspb.CreateQueueRequest(queue=queue_pb2.Queue(name="beta-queue")),
        )

    async def no_victim_schedules(ch: grpc.aio.Channel) -> None:
        listed = await invoke(
            ch, METHODS["ScheduleService/ListSchedules"], sspb.ListSchedulesRequest()
        )
        assert v.schedule not in {s.uuid for s in listed.schedules}

    async def deletes_own_runs_only(ch: grpc.aio.Channel) -> None:
        finished = [run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED]
        request = retpb.DeleteRunsRequest(statuses=finished)
        await invoke(ch, METHODS["RetentionService/DeleteRuns"], request)
        # (the victim's finished run is checked to be there, below)

    visible_checks = {
        "RetentionService/DeleteRuns": deletes_own_runs_only,
        "ScheduleService/ListSchedules": no_victim_schedules,
    }

    async def own_workers_only(ch: grpc.aio.Channel) -> None:
        listed = await invoke(
            ch, METHODS["FleetService/ListWorkers"], fleet_service_pb2.ListWorkersRequest()
        )
        assert "beta-w" not in {w.worker_id for w in listed.workers}

    visible_checks |= {
        "FleetService/ListWorkers": own_workers_only,
        "DefinitionService/ListDefinitions": no_victim_definitions,
        "DefinitionService/CreateDefinition": create_same_name,
        "RunService/ListRuns": no_victim_runs,
        "WorkerService/LeaseRuns": leases_nothing,
        "TokenService/CreateToken": own_tokens_only,
        "TokenService/ListTokens": own_tokens_only,
        "WorkspaceService/CreateWorkspace": cannot_create_workspaces,
        "WorkspaceService/ListWorkspaces": own_workspace_only,
        "AuditService/ListAuditEvents": own_audit_only,
        "QueueService/ListQueues": no_victim_queues,
        "QueueService/CreateQueue": create_same_queue,
    }
    assert set(refs) | set(fences) | set(visible_checks) == set(METHODS)

    async with dial(alpha) as thief:
        for name, (build, theirs, missing) in refs.items():
            method = METHODS[name]
            got = await refusal(invoke(thief, method, build(theirs)), [theirs, missing])
            expected = await refusal(invoke(thief, method, build(missing)), [theirs, missing])
            assert got == expected, name
            assert got.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)
        missing_run, missing_lease = str(uuid.uuid4()), str(uuid.uuid4())
        ids = [v.running.run, v.running.lease_id, missing_run, missing_lease]
        for name, build_fenced in fences.items():
            method = METHODS[name]
            request = build_fenced(v.running.run, v.running.lease_id)  # even a leaked lease
            got = await refusal(invoke(thief, method, request), ids)
            expected = await refusal(
                invoke(thief, method, build_fenced(missing_run, missing_lease)), ids
            )
            assert got == expected, name
            assert got.code == grpc.StatusCode.ABORTED
        for check in visible_checks.values():
            await check(thief)

    async with aio_channel(target, token=v.token) as victim:  # nothing of beta changed
        run = await invoke(
            victim, METHODS["RunService/GetRun"], rpb.GetRunRequest(run=v.running.run)
        )
        assert run.run.status == run_pb2.RUN_STATUS_RUNNING and not run.run.cancel_requested
        renewed = await invoke(
            victim,
            METHODS["WorkerService/RenewLease"],
            fences["WorkerService/RenewLease"](v.running.run, v.running.lease_id),
        )
        assert not renewed.cancel_requested
        logs = await invoke(
            victim, METHODS["LogService/GetLogs"], log_service_pb2.GetLogsRequest(run=v.running.run)
        )
        assert not logs.entries
        got = await invoke(
            victim,
            METHODS["DefinitionService/GetDefinition"],
            dspb.GetDefinitionRequest(definition="shared-name"),
        )
        assert got.definition.description == "" and got.definition.version == 1
        results = await invoke(
            victim, METHODS["RunService/ListRunResults"], rpb.ListRunResultsRequest(run=v.finished)
        )
        assert [r.name for r in results.results] == ["out.txt"]
        listed = await invoke(
            victim, METHODS["TokenService/ListTokens"], access_service_pb2.ListTokensRequest()
        )
        assert v.viewer.prefix in {t.prefix for t in listed.tokens}  # not revoked


PERMISSION = {
    "ADMIN": {
        "TokenService",
        "AuditService",
        "WorkspaceService/CreateWorkspace",
        "RetentionService/SetRetentionPolicy",
    },
    "WORK": {"WorkerService"},
}
READ_PREFIXES = ("Get", "List", "Watch", "Tail", "Download")


def needed(name: str) -> str:
    service, method = name.split("/")
    for permission, names in PERMISSION.items():
        if service in names or name in names:
            return permission
    return "READ" if method.startswith(READ_PREFIXES) else "WRITE"


ROLE_GRANTS: dict[int, set[str]] = {
    apb.TOKEN_ROLE_ADMIN: {"READ", "WRITE", "ADMIN", "WORK"},
    apb.TOKEN_ROLE_MEMBER: {"READ", "WRITE"},
    apb.TOKEN_ROLE_VIEWER: {"READ"},
    apb.TOKEN_ROLE_WORKER: {"WORK"},
}


async def code_of(channel: grpc.aio.Channel, method: MethodDescriptor) -> grpc.StatusCode:
    request = [] if method.client_streaming else empty_request(method)
    try:
        await invoke(channel, method, request)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("role", list(ROLE_GRANTS), ids=apb.TokenRole.Name)
async def test_each_role_calls_only_what_it_may(
    role: int, channel: grpc.aio.Channel, target: str, dial: Dial
) -> None:
    made = await invoke(
        channel,
        METHODS["TokenService/CreateToken"],
        access_service_pb2.CreateTokenRequest(name="role-test", role=role),  # type: ignore[arg-type]
    )
    async with dial(made.secret) as ch:
        for name, method in METHODS.items():
            if name == "WorkerService/LeaseRuns":
                continue  # an empty request long-polls nothing: checked below
            code = await code_of(ch, method)
            if needed(name) in ROLE_GRANTS[role]:
                assert code not in (
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.UNAUTHENTICATED,
                ), name
            else:
                assert code == grpc.StatusCode.PERMISSION_DENIED, name


async def test_missing_bad_revoked_and_expired_tokens_are_refused(
    channel: grpc.aio.Channel, target: str, dial: Dial
) -> None:
    short = await invoke(
        channel,
        METHODS["TokenService/CreateToken"],
        access_service_pb2.CreateTokenRequest(
            name="short", role=apb.TOKEN_ROLE_ADMIN, ttl=duration_pb2.Duration(seconds=1)
        ),
    )
    revoked = await invoke(
        channel,
        METHODS["TokenService/CreateToken"],
        access_service_pb2.CreateTokenRequest(name="gone", role=apb.TOKEN_ROLE_ADMIN),
    )
    async with aio_channel(target, token=revoked.secret) as ch:  # works, and is cached
        await invoke(ch, METHODS["RunService/ListRuns"], rpb.ListRunsRequest())
    await invoke(
        channel,
        METHODS["TokenService/RevokeToken"],
        access_service_pb2.RevokeTokenRequest(token=revoked.token.uuid),
    )
    await asyncio.sleep(1.1)  # `short` expires
    wrong_secret = revoked.secret[:-4] + ("AAAA" if not revoked.secret.endswith("AAAA") else "BBBB")
    for token in ("", "not-a-token", wrong_secret, revoked.secret, short.secret):
        async with dial(token or None) as ch:  # "": no token at all
            for name, method in METHODS.items():
                code = await code_of(ch, method)
                assert code == grpc.StatusCode.UNAUTHENTICATED, (name, token[:8])
    audit = await invoke(
        channel,
        METHODS["AuditService/ListAuditEvents"],
        access_service_pb2.ListAuditEventsRequest(action="auth.failed"),
    )
    details = " ".join(e.detail for e in audit.events)
    assert "token revoked" in details and "token expired" in details and "wrong secret" in details
    assert revoked.secret not in details and short.secret not in details


async def test_tokens_are_shown_once_and_stored_as_hashes(
    channel: grpc.aio.Channel, database_url: str
) -> None:
    import asyncpg

    made = await invoke(
        channel,
        METHODS["TokenService/CreateToken"],
        access_service_pb2.CreateTokenRequest(name="ci", role=apb.TOKEN_ROLE_MEMBER),
    )
    assert re.fullmatch(r"byt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", made.secret)
    assert made.secret.startswith(made.token.prefix)
    listed = await invoke(
        channel, METHODS["TokenService/ListTokens"], access_service_pb2.ListTokensRequest()
    )
    assert made.secret not in str(listed) and made.token.prefix in {t.prefix for t in listed.tokens}
    conn = await asyncpg.connect(database_url)
    try:
        dump = await conn.fetch("SELECT * FROM api_tokens")
    finally:
        await conn.close()
    assert made.secret not in str(dump)
    assert made.secret.split("_")[-1] not in str(dump)


async def test_a_dependency_on_another_workspace_is_refused_like_a_missing_run(
    tenants: Any, target: str
) -> None:
    from batchyard.v1 import pipeline_pb2

    alpha, v = tenants
    missing = str(uuid.uuid4())

    def single(ref: str) -> Any:
        return rpb.SubmitRunRequest(
            config=shell_config(), depends_on=[pipeline_pb2.RunDependency(run=ref)]
        )

    def in_batch(ref: str) -> Any:
        return rpb.BatchSubmitRunsRequest(requests=[single(ref)])

    builds = {"RunService/SubmitRun": single, "RunService/BatchSubmitRuns": in_batch}
    async with aio_channel(target, token=alpha) as thief:
        for name, build in builds.items():
            for theirs in (v.running.run, v.finished, v.pending):
                ids = [theirs, missing]
                got = await refusal(invoke(thief, METHODS[name], build(theirs)), ids)
                expected = await refusal(invoke(thief, METHODS[name], build(missing)), ids)
                assert got == expected, name
                assert got.code == grpc.StatusCode.NOT_FOUND
        listed = await invoke(thief, METHODS["RunService/ListRuns"], rpb.ListRunsRequest())
        assert not listed.runs  # nothing was submitted
