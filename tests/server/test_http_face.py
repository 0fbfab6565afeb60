"""The HTTP face as curl and a browser use it: JSON calls with the gRPC port's errors,
GET for side-effect-free methods, server streams, the session cookie and its CSRF rule,
HTTP/2, and /metrics counting what was done."""

from __future__ import annotations

import asyncio
import json
import re
import struct
import subprocess
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import field_mask_pb2

from batchyard.server.app import App
from batchyard.v1 import definition_pb2, job_pb2, run_pb2
from batchyard.v1 import definition_service_pb2 as dspb
from batchyard.v1 import run_service_pb2 as rpb
from tests.connect_channel import error_of
from tests.rpc import failure
from tests.server.helpers import complete, define, fail_fields, lease, make_queue, submit

pytestmark = pytest.mark.server(http_listen="127.0.0.1:0")


@pytest.fixture
async def http(server: App) -> Any:
    assert server.http is not None
    base = f"http://127.0.0.1:{server.http.port}"
    async with aiohttp.ClientSession(base) as session:
        yield session


def bearer(token: str, **more: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **more}


JSON = {"content-type": "application/json"}


async def test_a_bad_submit_says_the_same_over_json_as_over_grpc(
    http: aiohttp.ClientSession, runs: Any, admin_token: str
) -> None:
    request = {"config": {"type": "JOB_TYPE_SHELL"}}  # no command
    async with http.post(
        "/batchyard.v1.RunService/SubmitRun",
        data=json.dumps(request),
        headers=bearer(admin_token, **JSON),
    ) as response:
        assert response.status == 400
        assert response.headers["content-type"] == "application/json"
        error = await response.json()
    over_http = failure(error_of(error))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        config = job_pb2.JobConfig(type=job_pb2.JOB_TYPE_SHELL)
        await runs.SubmitRun(rpb.SubmitRunRequest(config=config))
    over_grpc = failure(info.value)
    assert error["code"] == "invalid_argument"
    assert (over_http.reason, over_http.fields) == (over_grpc.reason, over_grpc.fields)
    assert over_http.fields  # BadRequest field violations came through
    debug = {d["type"]: d["debug"] for d in error["details"]}
    assert debug["google.rpc.ErrorInfo"]["reason"] == over_grpc.reason


async def test_get_answers_read_only_methods_only(
    http: aiohttp.ClientSession, definitions: Any, runs: Any, admin_token: str
) -> None:
    await define(definitions, "greet")
    run = await submit(runs, "greet")
    message = json.dumps({"run": run.uuid})
    async with http.get(
        "/batchyard.v1.RunService/GetRun",
        params={"encoding": "json", "message": message},
        headers=bearer(admin_token),
    ) as response:
        assert response.status == 200
        assert (await response.json())["run"]["uuid"] == run.uuid
    async with http.get(
        "/batchyard.v1.RunService/CancelRun",
        params={"encoding": "json", "message": message},
        headers=bearer(admin_token),
    ) as response:
        assert response.status == 405
    async with http.post(
        "/batchyard.v1.WorkerService/LeaseRuns", data="{}", headers=bearer(admin_token, **JSON)
    ) as response:  # for workers: gRPC only
        assert response.status == 404
        assert (await response.json())["code"] == "unimplemented"


async def stream(http: aiohttp.ClientSession, path: str, body: dict[str, Any], **headers: str):
    data = json.dumps(body).encode()
    framed = struct.pack(">BI", 0, len(data)) + data
    async with http.post(
        path, data=framed, headers={"content-type": "application/connect+json", **headers}
    ) as response:
        assert response.status == 200
        raw = await response.read()
    messages, end = [], None
    while raw:
        flags, size = struct.unpack(">BI", raw[:5])
        frame, raw = json.loads(raw[5 : 5 + size]), raw[5 + size :]
        if flags & 2:
            end = frame
        else:
            messages.append(frame)
    return messages, end


async def test_server_streams_end_with_their_status(
    http: aiohttp.ClientSession, definitions: Any, runs: Any, workers: Any, admin_token: str
) -> None:
    await define(definitions, "greet")
    run = await submit(runs, "greet")
    [leased] = await lease(workers)
    await complete(workers, leased)
    events, end = await stream(
        http, "/batchyard.v1.RunService/WatchRun", {"run": run.uuid}, **bearer(admin_token)
    )
    assert events[-1]["run"]["status"] == "RUN_STATUS_SUCCEEDED" and end == {}
    _, end = await stream(http, "/batchyard.v1.LogService/TailLogs", {"run": run.uuid})
    assert end is not None and end["error"]["code"] == "unauthenticated"


async def test_the_cookie_stands_for_the_token_with_the_csrf_header(
    server: App, http: aiohttp.ClientSession, admin_token: str
) -> None:
    assert server.http is not None
    link = server.http.sign_in_link(admin_token)
    path = link.split(str(server.http.port), 1)[1]
    async with http.get(path, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    async with http.get(path, allow_redirects=False) as response:
        assert response.status == 400  # one time only
    session = cookie.split(";", 1)[0]
    call = "/batchyard.v1.RunService/ListRuns"
    async with http.post(call, data="{}", headers={"cookie": session, **JSON}) as response:
        assert response.status == 401  # a cross-site form could have sent this
    csrf = {"cookie": session, "x-batchyard-csrf": "1", **JSON}
    async with http.post(call, data="{}", headers=csrf) as response:
        assert response.status == 200
    evil = {**csrf, "origin": "http://evil.example"}
    async with http.post(call, data="{}", headers=evil) as response:
        assert response.status == 401
    async with http.get("/api/session", headers={"cookie": session}) as response:
        assert (await response.json())["role"] == "ADMIN"


async def test_the_console_is_served_with_a_strict_csp(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as response:
        assert response.status == 200
        csp = response.headers["content-security-policy"]
        page = await response.text()
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script" in page and "<script>" not in page  # no inline script


async def test_http2_without_tls(server: App, admin_token: str) -> None:
    assert server.http is not None
    url = f"http://127.0.0.1:{server.http.port}/batchyard.v1.RunService/ListRuns"
    curl = await asyncio.create_subprocess_exec(
        *["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}", url],
        *["-H", f"authorization: Bearer {admin_token}", "-H", "content-type: application/json"],
        *["-d", "{}"],
        stdout=subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(curl.communicate(), 30)
    body, version = out.decode().rsplit("\n", 1)
    assert version == "2" and json.loads(body) == {}


def samples(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            key, value = line.rsplit(" ", 1)
            found[key.removeprefix(name)] = float(value)
    return found


async def test_metrics_count_what_was_done(
    http: aiohttp.ClientSession, definitions: Any, runs: Any, workers: Any, queues: Any
) -> None:
    await make_queue(queues, "q")
    await define(definitions, "job", queue="q")
    for _ in range(7):
        await submit(runs, "job")
    leased = await lease(workers, max_runs=4, queues=["q"])
    assert len(leased) == 4
    for one in leased[:2]:
        await complete(workers, one, run_pb2.RUN_STATUS_FAILED, **fail_fields())
    await asyncio.sleep(1.1)  # the cache of database values, and the lease latencies
    async with http.get("/metrics") as response:
        assert response.status == 200
        text = await response.text()
    assert samples(text, "batchyard_runs_submitted_total") == {'{queue="q"}': 7}
    assert samples(text, "batchyard_queue_pending_runs") == {'{queue="q"}': 3}
    assert samples(text, "batchyard_queue_running_runs") == {'{queue="q"}': 2}
    assert samples(text, "batchyard_runs_started_total") == {'{queue="q"}': 4}
    failed = samples(text, "batchyard_runs")
    assert failed['{queue="q",reason="NON_ZERO_EXIT_CODE",status="FAILED"}'] == 2
    assert samples(text, "batchyard_lease_latency_seconds_count") == {'{queue="q"}': 4}
    assert samples(text, "batchyard_queue_oldest_pending_seconds")['{queue="q"}'] > 0
    rpcs = samples(text, "batchyard_rpc_total")
    assert rpcs['{code="OK",method="RunService/SubmitRun"}'] == 7
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", text)  # no run ids as labels


async def test_run_again_keeps_version_overrides_and_payload(
    http: aiohttp.ClientSession,
    definitions: Any,
    runs: Any,
    workers: Any,
    admin_token: str,
    queues: Any,
) -> None:
    await make_queue(queues, "again")
    await define(definitions, "job", queue="again")
    first = await submit(
        runs, "job", payload="cGF5bG9hZA==", overrides={"args": ["a"], "env": {"K": "v"}}
    )
    await definitions.UpdateDefinition(  # a new version: the rerun keeps the first's
        dspb.UpdateDefinitionRequest(
            definition="job",
            changes=definition_pb2.Definition(description="v2"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
    )
    call = "/batchyard.v1.RunService/SubmitRun"
    async with http.post(
        call, data=json.dumps({"rerunOf": first.uuid}), headers=bearer(admin_token, **JSON)
    ) as response:
        assert response.status == 200, await response.text()
        again = (await response.json())["run"]
    assert again["uuid"] != first.uuid and again["definitionVersion"] == "1"
    assert again["config"]["args"] == ["a"] and again["config"]["env"] == {"K": "v"}
    leased = {r.run: r for r in await lease(workers, max_runs=2, queues=["again"])}
    assert leased[again["uuid"]].payload == b"payload" == leased[first.uuid].payload
    async with http.post(
        call,
        data=json.dumps({"rerunOf": first.uuid, "payload": "eA=="}),
        headers=bearer(admin_token, **JSON),
    ) as response:
        assert response.status == 400
        assert "rerun_of" in failure(error_of(await response.json())).fields
