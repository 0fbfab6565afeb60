"""What real jobs write: long lines, binary, missing newline, \\r, floods, levels, caps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from batchyard.v1 import run_pb2
from batchyard.worker.execution.attempt import ExecutionOptions
from batchyard.worker.output.collector import Level, Stream
from batchyard.worker.output.lines import truncation_marker
from tests.worker.jobs import python_job, run_job, sh, shell_job


async def test_over_long_line_is_capped_with_a_visible_marker(options: ExecutionOptions) -> None:
    script = "import sys; sys.stdout.write('x' * 100_000 + '\\nafter\\n')"
    result = await run_job(python_job(script), options)
    first, second = result.sink.lines_of("stdout")
    assert first == "x" * 16384 + truncation_marker(100_000 - 16384)
    assert second == "after"


async def test_binary_output_is_decoded_with_replacements(options: ExecutionOptions) -> None:
    script = "import sys; sys.stdout.buffer.write(bytes(range(256)) + b'\\n')"
    result = await run_job(python_job(script), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    text = "".join(result.sink.lines_of("stdout"))
    assert "\x00" not in text
    assert "\ufffd" in text
    assert "ABC" in text


async def test_last_line_without_newline_is_kept(options: ExecutionOptions) -> None:
    result = await run_job(shell_job("printf", "first\\nlast"), options)
    assert result.sink.lines_of("stdout") == ["first", "last"]


async def test_lone_carriage_returns_split_lines(options: ExecutionOptions) -> None:
    result = await run_job(shell_job("printf", "10%%\\r20%%\\r30%%\\r\\ndone\\n"), options)
    assert result.sink.lines_of("stdout") == ["10%", "20%", "30%", "done"]


async def test_ten_megabytes_on_stdout_do_not_block_the_job(options: ExecutionOptions) -> None:
    script = (
        "import sys\n"
        "line = 'y' * 1023 + '\\n'\n"
        "for i in range(10 * 1024): sys.stdout.write(line)\n"
        "sys.stderr.write('z' * 200_000 + '\\n')\n"
        "print('the end')\n"
    )
    result = await run_job(python_job(script, timeout=30), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    stdout = result.sink.lines_of("stdout")
    assert len(stdout) == 10 * 1024 + 1
    assert stdout[-1] == "the end"
    assert len(result.sink.lines_of("stderr")) == 1


async def test_output_cap_per_attempt(options: ExecutionOptions) -> None:
    config = python_job("for i in range(1000): print(f'line {i:04}')")
    config.resources.output_bytes = 90  # 10 lines of 9 bytes
    result = await run_job(config, options)
    assert result.sink.lines_of("stdout") == [f"line {i:04}" for i in range(10)]
    dropped = [line for line in result.sink.system() if line.startswith("output limit")]
    assert dropped == [
        "output limit reached: dropped 990 lines (8910 bytes) of output over the per-attempt "
        "limits of 1000000 lines and 90 bytes"
    ]


async def test_line_cap_per_attempt_is_a_worker_setting(options: ExecutionOptions) -> None:
    capped = replace(options, max_output_lines=5)
    result = await run_job(python_job("for i in range(100): print(i)"), capped)
    assert result.sink.lines_of("stdout") == ["0", "1", "2", "3", "4"]
    assert any("dropped 95 lines (185 bytes)" in line for line in result.sink.system())
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED  # the run is unaffected


async def test_progress_lines_are_not_stored(options: ExecutionOptions) -> None:
    script = "print('a'); print('::progress 40'); print('b'); print('::progress 100')"
    result = await run_job(python_job(script), options)
    assert result.sink.lines_of("stdout") == ["a", "b"]
    assert result.outcome.progress == 100
    assert [r.seq for r in result.sink.records] == list(range(1, len(result.sink.records) + 1))


async def test_system_entries_tell_what_the_worker_did(options: ExecutionOptions) -> None:
    named = replace(options, worker_id="host-7")
    result = await run_job(python_job("print('hi')", location="job.py"), named, run="r-9")
    assert result.sink.system() == [
        "attempt 1 of run r-9 started on worker host-7",
        "source ready: inline text written to 'job.py'",
        "starting: python job: job.py",
        "attempt ended: exited with code 0",
    ]
    assert result.sink.records[0].seq == 1


async def test_json_lines_keep_their_level(options: ExecutionOptions) -> None:
    script = (
        'echo \'{"level": "error", "msg": "boom"}\'; '
        'echo \'{"level": "debug", "msg": "detail"}\' >&2; echo plain; echo oops >&2'
    )
    result = await run_job(sh(script), options)
    levels = {(r.stream, r.message.split('"msg": ')[-1], r.level) for r in result.sink.records}
    assert (Stream.STDOUT, '"boom"}', Level.ERROR) in levels
    assert (Stream.STDERR, '"detail"}', Level.DEBUG) in levels
    assert (Stream.STDOUT, "plain", Level.INFO) in levels
    assert (Stream.STDERR, "oops", Level.WARNING) in levels


async def test_job_output_never_reaches_the_worker_process_output(
    options: ExecutionOptions, capfd: pytest.CaptureFixture[str]
) -> None:
    await run_job(sh("echo job-says-hello; echo job-complains >&2"), options)
    captured = capfd.readouterr()
    assert "job-says-hello" not in captured.out + captured.err
    assert "job-complains" not in captured.out + captured.err
