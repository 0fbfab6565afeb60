"""Reused attempt directories: every attempt still starts in an empty directory of its own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.execution.directories import SlotDirectories
from tests.worker.jobs import MemorySink, sh

LITTER = """
echo data > left.txt
mkdir -p sub/deeper && echo x > sub/deeper/f && chmod 500 sub
echo result > "$BATCHYARD_OUTPUT_DIR/out.txt"
ln -s {outside} link-out
chmod 500 "$BATCHYARD_OUTPUT_DIR"
"""
LOOK = 'ls -A; echo "--"; ls -A "$BATCHYARD_OUTPUT_DIR"; echo "--"; cat "$BATCHYARD_PAYLOAD_PATH"'
LOOK += "; echo"


@pytest.fixture
def pooled(options: ExecutionOptions) -> ExecutionOptions:
    return dataclasses.replace(options, directories=SlotDirectories(options.state_dir))


async def run(options: ExecutionOptions, script: str, payload: bytes = b"", run: str = "r"):
    sink = MemorySink()
    spec = AttemptSpec(run, 1, sh(script), payload)
    async with Execution(spec, options, sink=sink) as execution:
        outcome = await execution.run()
        root = execution.paths.root
    return outcome, sink, root


async def test_the_next_attempt_in_a_slot_finds_nothing_of_the_last(pooled, tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    first, _, root1 = await run(pooled, LITTER.format(outside=outside), payload=b"secret")
    assert first.exit_code == 0
    _, sink, root2 = await run(pooled, LOOK, run="r2")
    assert root2 == root1, "the slot's directory is reused"
    assert sink.lines_of("stdout") == ["output", "--", "--", ""]
    assert outside.read_text() == "keep me", "a symlink out is removed, not followed"


async def test_a_payload_is_there_for_its_attempt_only(pooled):
    async with Execution(
        AttemptSpec("p", 1, sh(LOOK), b"the payload"), pooled, sink=MemorySink()
    ) as e:
        await e.run()
        assert e.paths.payload.read_bytes() == b"the payload"
        root = e.paths.root
    _, sink, again = await run(pooled, LOOK, run="p2")
    assert again == root and sink.lines_of("stdout")[-1] == ""


async def test_concurrent_attempts_get_distinct_directories(pooled):
    import asyncio

    results = await asyncio.gather(
        *(run(pooled, "sleep 0.2; ls -A", run=f"c{i}") for i in range(4))
    )
    roots = {root for _, _, root in results}
    assert len(roots) == 4
    assert all(sink.lines_of("stdout") == ["output"] for _, sink, _ in results)


async def test_a_worker_start_clears_leftovers(options: ExecutionOptions):
    stale = options.state_dir / "slots" / "1"
    stale.mkdir(parents=True)
    (stale / "old.txt").write_text("from a dead worker")
    pooled = dataclasses.replace(options, directories=SlotDirectories(options.state_dir))
    _, sink, root = await run(pooled, "ls -A")
    assert root == stale and sink.lines_of("stdout") == ["output"]
