"""Secret masking on the worker's log path: lines/s through the output collector.

    uv run python -m tests.bench.masking [--lines 500000] [--repeat 3]

Job output (typical ~70-character log lines, in 64 KiB reads as the pipe delivers them) goes
through :class:`~batchyard.worker.output.collector.OutputCollector` into a sink that drops records:
with no secret (no masker: the baseline), then with 1, 3 and 10 secrets (URL-safe random
values, then values with characters that percent-encoding and JSON change). One secret in
every 1,000 lines is printed, so the rewrite path is exercised too. Then one real job
(``seq 1 N`` through an :class:`~batchyard.worker.execution.attempt.Execution`, no server) without
and with 3 secrets. Medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from batchyard.v1 import job_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.output.collector import LogRecord, OutputCollector, Stream
from batchyard.worker.output.masking import Masker

CHUNK = 64 * 1024


class _NullSink:
    def emit(self, record: LogRecord) -> None:
        return None

    def close(self) -> None:
        return None


def _output(lines: int, secret: str) -> bytes:
    text = "".join(
        f"{secret}\n"
        if i % 1000 == 999
        else f"2026-11-21T08:00:{i % 60:02d} INFO processing item {i} of batch abc: ok\n"
        for i in range(lines)
    )
    return text.encode()


def _rate(data: bytes, lines: int, masker: Masker | None, repeat: int) -> float:
    rates = []
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    for _ in range(repeat):
        collector = OutputCollector(
            _NullSink(), masker=masker, max_output_lines=10**9, max_output_bytes=10**12
        )
        started = time.perf_counter()
        for chunk in chunks:
            collector.feed(Stream.STDOUT, chunk)
        collector.finish()
        rates.append(lines / (time.perf_counter() - started))
    return statistics.median(rates)


async def _job_rate(lines: int, secret_env: dict[str, str], repeat: int) -> float:
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SHELL,
        source_location="seq",
        args=["1", str(lines)],
        secret_env=secret_env,
    )
    rates = []
    with tempfile.TemporaryDirectory() as scratch:
        options = ExecutionOptions(
            state_dir=Path(scratch),
            workspace_root=Path(scratch),
            python=sys.executable,
            job_path=os.environ.get("PATH") or os.defpath,
            max_output_lines=10**9,
            max_output_bytes=10**12,
        )
        for attempt in range(1, repeat + 1):
            spec = AttemptSpec("bench", attempt, config)
            async with Execution(spec, options, sink=_NullSink()) as execution:
                started = time.perf_counter()
                await execution.run()
                rates.append(lines / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    plain = [secrets.token_urlsafe(24) for _ in range(30)]
    special = [secrets.token_urlsafe(18) + "/+ é'" for _ in range(30)]
    data = _output(args.lines, plain[0])
    print(f"{'case':34} {'forms':>6} {'lines/s':>12}")
    baseline = _rate(data, args.lines, None, args.repeat)
    print(f"{'no secrets (no masker)':34} {0:>6} {baseline:>12,.0f}")
    for label, values in (("url-safe", plain), ("special chars", special)):
        for count in (1, 3, 10, 30):
            masker = Masker.of(values[:count])
            assert masker is not None
            rate = _rate(data, args.lines, masker, args.repeat)
            name = f"{count} secret(s), {label}"
            print(f"{name:34} {len(masker.forms):>6} {rate:>12,.0f}")
    job_lines = args.lines * 2
    for label, env in (
        ("job, no secrets", {}),
        ("job, 3 secrets", {f"S{i}": value for i, value in enumerate(special[:3])}),
    ):
        rate = asyncio.run(_job_rate(job_lines, env, args.repeat))
        print(f"{label + f' (seq 1 {job_lines})':34} {'':>6} {rate:>12,.0f}")


if __name__ == "__main__":
    main()
