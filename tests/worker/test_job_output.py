"""What real jobs write: long lines, binary, missing newline, \\r, floods, levels, caps."""

from __future__ import annotations

import pytest

from batchyard.v1 import run_pb2
from batchyard.worker.execution import ExecutionOptions
from batchyard.worker.lines import truncation_marker
from batchyard.worker.output import Level, Stream
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
    assert any("output limit of 90 bytes" in line for line in result.sink.system())


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
