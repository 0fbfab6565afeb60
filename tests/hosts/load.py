"""The steady load of the multi-host test, run on its client host (inside its namespace):

    python -m tests.hosts.load --target ipv4:A:50051,B:50051 --seconds S --out FILE \
        --marks DIR [--drain S]

Submits a short run every 0.5 s and a long one every 4 s for ``--seconds`` (each submit
carries a request id, so one retried across an outage is one run), waits until every run
has ended (at most ``--drain`` seconds), then reads every run, its attempts and each
attempt's stdout lines through the API and writes them as JSON to ``--out``. Every call
is retried while the service is unavailable (the test restarts it under this load).

Each job prints numbered lines ("line 1" .. "line N", one every 0.5 s, plus a result file
for short ones) and, job-side, appends the time to ``MARKS/<run>.<attempt>`` at its start
and after every line, which is how the test measures two attempts of one run overlapping.
A ``setsid`` sleeper started by every job (its pid in ``MARKS/<run>.<attempt>.pid``)
must die with its attempt, whatever ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_pb2,
    definition_service_pb2,
    definition_service_pb2_grpc,
    log_pb2,
    log_service_pb2,
    log_service_pb2_grpc,
    run_pb2,
    run_service_pb2,
    run_service_pb2_grpc,
)

SHORT_LINES, LONG_LINES = 3, 40
JOB = """
m="$MARKS/$BATCHYARD_RUN_ID.$BATCHYARD_ATTEMPT"
setsid sleep 1000 </dev/null >/dev/null 2>&1 &
echo $! > "$m.pid"
date +%s.%N >> "$m"
i=1
while [ $i -le "$1" ]; do
  echo "line $i"
  date +%s.%N >> "$m"
  sleep 0.5
  i=$((i + 1))
done
[ "$1" -gt 10 ] || echo done > "$BATCHYARD_OUTPUT_DIR/out.txt"
"""
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
FINISHED = {run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED}


async def call(method: Any, request: Any) -> Any:
    """``method(request)``, retried while the service is unavailable (up to 5 min)."""
    deadline = time.monotonic() + 300
    while True:
        try:
            return await method(request, timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RETRYABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def config(lines: int, marks: str) -> dict[str, Any]:
    return {
        "type": "JOB_TYPE_SHELL",
        "sourceLocation": "/bin/sh",
        "args": ["-c", JOB, "job", str(lines)],
        "env": {"MARKS": marks},
        "retryStrategy": {"numRetries": 5, "delayBetweenRetries": "0s"},
        "timeout": "120s",
    }


async def define(channel: grpc.aio.Channel, marks: str) -> None:
    stub = definition_service_pb2_grpc.DefinitionServiceStub(channel)
    for name, lines in (("short", SHORT_LINES), ("long", LONG_LINES)):
        definition = json_format.ParseDict(
            {"name": name, "config": config(lines, marks)}, definition_pb2.Definition()
        )
        request = definition_service_pb2.CreateDefinitionRequest(definition=definition)
        await call(stub.CreateDefinition, request)


async def submit_steadily(stub: Any, seconds: float) -> dict[str, str]:
    """Run uuid → kind, submitted at a steady pace for ``seconds``."""
    kinds: dict[str, str] = {}
    started = time.monotonic()
    tick = 0
    while time.monotonic() - started < seconds:
        kind = "long" if tick % 8 == 0 else "short"
        request = run_service_pb2.SubmitRunRequest(definition=kind, request_id=str(uuid.uuid4()))
        run = (await call(stub.SubmitRun, request)).run
        kinds[run.uuid] = kind
        tick += 1
        await asyncio.sleep(max(0.0, started + tick * 0.5 - time.monotonic()))
    return kinds


async def drain(stub: Any, runs: list[str], seconds: float) -> dict[str, run_pb2.Run]:
    deadline = time.monotonic() + seconds
    done: dict[str, run_pb2.Run] = {}
    while True:
        for run_id in runs:
            if run_id not in done:
                got = (await call(stub.GetRun, run_service_pb2.GetRunRequest(run=run_id))).run
                if got.status in FINISHED:
                    done[run_id] = got
        if len(done) == len(runs) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    for run_id in runs:  # the unfinished ones as they are
        if run_id not in done:
            done[run_id] = (await call(stub.GetRun, run_service_pb2.GetRunRequest(run=run_id))).run
    return done


async def stdout_lines(logs: Any, run_id: str, attempt: int) -> list[str]:
    lines: list[str] = []
    token = ""
    while True:
        request = log_service_pb2.GetLogsRequest(
            run=run_id,
            attempt=attempt,
            page_size=1000,
            page_token=token,
            streams=[log_pb2.LOG_STREAM_STDOUT],
        )
        page = await call(logs.GetLogs, request)
        lines += [entry.message for entry in page.entries]
        token = page.next_page_token
        if not token:
            return lines


def attempt_json(attempt: run_pb2.Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "worker_id": attempt.worker_id,
        "start": attempt.start_time.ToNanoseconds() / 1e9,
        "end": attempt.end_time.ToNanoseconds() / 1e9 if attempt.HasField("end_time") else None,
        "status": run_pb2.RunStatus.Name(attempt.status),
        "reason": run_pb2.RunReason.Name(attempt.reason),
        "message": attempt.message,
    }


async def main(args: argparse.Namespace) -> None:
    async with aio_channel(args.target) as channel:
        await define(channel, args.marks)
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        logs = log_service_pb2_grpc.LogServiceStub(channel)
        kinds = await submit_steadily(stub, args.seconds)
        Path(args.out + ".submitted").write_text(str(len(kinds)))
        done = await drain(stub, list(kinds), args.drain)
        report = {}
        for run_id, run in done.items():
            attempts = [attempt_json(a) for a in run.attempts]
            report[run_id] = {
                "kind": kinds[run_id],
                "status": run_pb2.RunStatus.Name(run.status),
                "reason": run_pb2.RunReason.Name(run.reason),
                "attempts": attempts,
                "logs": {
                    a["number"]: await stdout_lines(logs, run_id, a["number"]) for a in attempts
                },
            }
    Path(args.out).write_text(json.dumps(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--drain", type=float, default=90.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--marks", required=True)
    asyncio.run(main(parser.parse_args()))
