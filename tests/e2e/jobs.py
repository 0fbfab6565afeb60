"""Helpers for end-to-end tests: definitions, waiting on runs, processes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from google.protobuf import json_format

from batchyard.v1 import definition_pb2, run_pb2
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_service_pb2 as rpb

FINISHED = {run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED}


async def define(definitions, name: str, config: dict[str, Any]) -> definition_pb2.Definition:
    definition = json_format.ParseDict(
        {"name": name, "config": config}, definition_pb2.Definition()
    )
    return (
        await definitions.CreateDefinition(dpb.CreateDefinitionRequest(definition=definition))
    ).definition


async def submit(runs, definition: str, **fields: Any) -> run_pb2.Run:
    request = json_format.ParseDict({"definition": definition, **fields}, rpb.SubmitRunRequest())
    return (await runs.SubmitRun(request)).run


async def wait_for(
    runs, run_id: str, done=lambda r: r.status in FINISHED, timeout: float = 30
) -> run_pb2.Run:
    """Poll GetRun until `done(run)`; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        run = (await runs.GetRun(rpb.GetRunRequest(run=run_id))).run
        if done(run):
            return run
        if loop.time() > deadline:
            raise AssertionError(f"run {run_id} still {run_pb2.RunStatus.Name(run.status)}: {run}")
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    """The pids still alive after `timeout` seconds (empty when all are gone)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(alive(p) for p in pids) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return [p for p in pids if alive(p)]


async def read_pids(path, count: int, timeout: float = 10) -> list[int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if path.exists():
            pids = [int(x) for x in path.read_text().split()]
            if len(pids) >= count:
                return pids
        await asyncio.sleep(0.05)
    raise AssertionError(f"the job did not write {count} pids to {path}")


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


__all__ = ["alive", "define", "os", "process_state", "read_pids", "submit", "wait_for", "wait_gone"]
