"""`batchyard schedules`, `workspaces set-retention` and bulk `runs delete` against the
real server, as a user would type them; and the SDK's schedules in both faces."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from batchyard.client import AsyncClient, Client
from batchyard.server.app import App
from tests.client.cli_runner import Cli
from tests.server.helpers import define


async def test_schedules_create_list_trigger_pause_and_delete(
    capsys: Any, target: str, definitions: Any
) -> None:
    await define(definitions, "nightly")
    schedules = Cli(capsys, target, "schedules")
    code, out, err = await schedules(
        "create", "nightly", "--cron", "30 2 * * *", "--tz", "Europe/Oslo", "--overlap", "skip",
        "--note", "report", "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    made = json.loads(out)
    sid = made["uuid"]
    assert made["cron"] == "30 2 * * *" and len(made["nextFireTimes"]) == 5
    code, out, _ = await schedules("list")
    assert code == 0 and sid in out and "Europe/Oslo" in out and "skip" in out
    code, run_id, _ = await schedules("trigger", sid)
    assert code == 0 and len(run_id.strip()) == 36
    code, out, _ = await schedules("get", sid)
    assert code == 0 and run_id.strip() in out and "submitted" in out
    code, out, _ = await schedules("pause", sid)
    assert code == 0 and "paused" in out
    code, out, _ = await schedules("update", sid, "--every", "90s", "--note", "faster")
    assert code == 0 and "every 0:01:30" in out
    code, out, _ = await Cli(capsys, target, "runs")("list", "-o", "json")
    assert [r["schedule"] for r in json.loads(out)] == [sid]
    code, out, _ = await schedules("delete", sid)
    assert code == 0
    code, _, err = await schedules("get", sid)
    assert code == 1 and "not found" in err
    code, _, err = await schedules("create", "nightly", "--cron", "99 * * * *")
    assert code == 1 and "cron" in err


async def test_set_retention_and_bulk_delete(capsys: Any, target: str, definitions: Any) -> None:
    await define(definitions, "job")
    workspaces = Cli(capsys, target, "workspaces")
    code, out, err = await workspaces(
        "set-retention", "--keep-for", "30d", "--keep-succeeded", "10", "--keep-failed", "5"
    )
    assert code == 0, err
    assert "30 days" in out and "10" in out
    code, out, _ = await workspaces("get-retention", "--definition", "job", "-o", "json")
    assert json.loads(out)["effective"]["keepSucceeded"] == 10
    runs = Cli(capsys, target, "runs")
    code, out, _ = await runs("delete", "--older-than", "30d", "--status", "succeeded", "--dry-run")
    assert code == 0 and out.strip() == "0 runs would be deleted"
    code, _, err = await runs("delete")
    assert code == 2 and "--older-than" in err


async def test_the_sdk_schedules_in_both_faces(server: App, target: str, definitions: Any) -> None:
    await define(definitions, "job")

    def sync_face() -> Any:
        with Client(target) as client:
            s = client.schedules.create("job", interval=3600, overlap="allow", note="sdk")
            assert s.overlap_policy == 3 and s.interval.seconds == 3600
            updated = client.schedules.update(s.uuid, cron="@daily", time_zone="Asia/Tokyo")
            assert updated.cron == "@daily" and updated.time_zone == "Asia/Tokyo"
            run = client.schedules.trigger(s.uuid)
            assert run.schedule == s.uuid
            assert client.retention.delete_runs(schedule=s.uuid, dry_run=True) == 0
            return s

    s = await asyncio.to_thread(sync_face)  # the server runs in this test's event loop
    async with AsyncClient(target) as aclient:
        listed = [x async for x in aclient.schedules.list()]
        assert [x.uuid for x in listed] == [s.uuid]
        paused = await aclient.schedules.pause(s.uuid)
        assert paused.paused
        policy = await aclient.retention.set_policy(keep_succeeded=3)
        assert policy.keep_succeeded == 3
