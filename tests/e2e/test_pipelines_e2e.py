"""Arrays and dependencies with a real worker process: each child sees its index, the
array size and its own payload; a step runs only after the step it depends on, with
the SDK's pipeline helper and with the CLI's flags."""

from __future__ import annotations

import asyncio
import json

from batchyard.client import AsyncClient, RunCancelledError, RunFailedError
from batchyard.v1 import run_pb2
from tests.client.cli_runner import Cli

CHILD = (
    'echo "child $BATCHYARD_ARRAY_INDEX of $BATCHYARD_ARRAY_SIZE: $(cat "$BATCHYARD_PAYLOAD_PATH")"'
)


async def messages(run) -> list[str]:
    return [e.message async for e in run.follow(streams=["stdout"])]


async def test_array_children_get_index_size_and_their_own_payload(target, start_worker):
    start_worker("--slots", "4")
    async with AsyncClient(target, timeout=10) as client:
        config = {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh", "args": ["-c", CHILD]}
        await client.definitions.create({"name": "child", "config": config})
        array = await client.runs.submit("child", array_size=3, payloads=["a", "bb", "ccc"])
        assert array.state.array_size == 3
        done = await asyncio.wait_for(array.wait(show_progress=False), 60)
        assert done.state.status == run_pb2.RUN_STATUS_SUCCEEDED
        assert done.state.array_summary.succeeded == 3 and done.progress == 100
        kids = await array.children()
        assert [k.state.array_index for k in kids] == [0, 1, 2]
        assert [await messages(k) for k in kids] == [
            ["child 0 of 3: a"],
            ["child 1 of 3: bb"],
            ["child 2 of 3: ccc"],
        ]
        assert not (await array.refresh()).state.attempts  # the parent never ran itself


async def end_of(run):
    """The run once it has ended, whatever its end."""
    try:
        return await asyncio.wait_for(run.wait(show_progress=False), 60)
    except (RunFailedError, RunCancelledError):
        return await run.refresh()


async def test_a_pipeline_runs_in_dependency_order(target, start_worker):
    start_worker("--slots", "4")
    async with AsyncClient(target, timeout=10) as client:
        echo = {
            "type": "JOB_TYPE_SHELL",
            "sourceLocation": "/bin/sh",
            "args": ["-c", "sleep 0.2; echo $STEP"],
        }
        await client.definitions.create({"name": "echo", "config": echo})
        failing = {"type": "JOB_TYPE_SHELL", "sourceLocation": "false"}
        await client.definitions.create({"name": "fail", "config": failing})
        pipe = client.runs.pipeline()
        extract = pipe.add("echo", env={"STEP": "extract"})
        parts = pipe.add("echo", env={"STEP": "part"}, array_size=2, depends_on=[extract])
        load = pipe.add("echo", env={"STEP": "load"}, depends_on=[parts])
        broken = pipe.add("fail", retries=0)
        never = pipe.add("echo", env={"STEP": "never"}, depends_on=[broken])
        anyway = pipe.add("echo", env={"STEP": "anyway"}, depends_on=[(broken, "any")])
        runs = await pipe.submit()
        assert len(runs) == 6
        ended = [await end_of(r) for r in runs]
        status = [r.state.status for r in ended]
        assert status[:3] == [run_pb2.RUN_STATUS_SUCCEEDED] * 3
        assert status[3:] == [
            run_pb2.RUN_STATUS_FAILED,
            run_pb2.RUN_STATUS_FAILED,
            run_pb2.RUN_STATUS_SUCCEEDED,
        ]
        assert ended[4].state.reason == 9 and runs[3].id in ended[4].state.message
        first, array, last = (r.state for r in ended[:3])
        kids = await runs[1].children()
        assert all(
            k.state.start_time.ToNanoseconds() >= first.end_time.ToNanoseconds() for k in kids
        )
        assert last.start_time.ToNanoseconds() >= array.end_time.ToNanoseconds()
        del extract, load, never, anyway


async def test_cli_array_with_payloads_dir_and_after(capsys, target, start_worker, tmp_path):
    start_worker("--slots", "4")
    async with AsyncClient(target, timeout=10) as client:
        config = {"type": "JOB_TYPE_SHELL", "sourceLocation": "/bin/sh", "args": ["-c", CHILD]}
        await client.definitions.create({"name": "child", "config": config})
    payloads = tmp_path / "payloads"
    payloads.mkdir()
    for name, text in (("01.txt", "x"), ("02.txt", "y")):
        (payloads / name).write_text(text)
    runs = Cli(capsys, target, "runs", timeout_flag="--request-timeout")
    code, out, err = await runs("submit", "child", "--payloads-dir", str(payloads), "-o", "json")
    assert code == 0, err
    array = json.loads(out)
    assert array["arraySize"] == 2
    code, out, err = await runs(
        "submit", "child", "--after", array["uuid"], "--payload", "z", "--wait"
    )
    assert code == 0 and "succeeded" in out + err, out + err
    code, shown, _ = await runs("get", array["uuid"])
    assert "2 children: 2 succeeded" in shown, shown
    code, listed, _ = await runs("list", "--parent", array["uuid"], "-o", "json")
    assert len(json.loads(listed)) == 2
    code, _bad, err = await runs("submit", "child", "--after", f"{array['uuid']}:maybe")
    assert code != 0 and "--after" in err
