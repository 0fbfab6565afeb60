"""Secret masking: a job's secrets never reach a stored log entry, an outcome or the
worker's process log, whatever form the job prints them in (real subprocesses for the
end-to-end cases)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import replace
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

import pytest

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.attempt import ExecutionOptions
from batchyard.worker.output.collector import OutputCollector, Stream
from batchyard.worker.output.lines import truncation_marker
from batchyard.worker.output.masking import (
    MASK,
    MIN_SECRET_CHARS,
    Masker,
    dsn_passwords,
    encoded_forms,
    job_secrets,
)
from tests.worker.jobs import MemorySink, Result, run_job, shell_job

CANARY = 'cAn4ry/+%&"x=Q9\\é-7f3e1c'
"""Characters that base64, percent-encoding and JSON all change."""


def _leaks(text: str, secret: str = CANARY) -> list[str]:
    """The ways ``text`` still gives ``secret`` away (decoded independently of masking)."""
    found = []
    raw = secret.encode()
    if secret in text:
        found.append("plain")
    for decode in (unquote, unquote_plus):
        if secret in decode(text):
            found.append(decode.__name__)
    for word in text.replace('"', " ").split():
        for prefix in ("", "A", "AA", "AAA"):  # any alignment of a base64 stream
            for alphabet in (base64.b64decode, base64.urlsafe_b64decode):
                candidate = prefix + word
                try:
                    decoded = alphabet(candidate + "=" * (-len(candidate) % 4))
                except ValueError:
                    continue
                if raw in decoded:
                    found.append(f"base64 {word!r}")
    return found


def _records_leak(result: Result, secret: str = CANARY) -> list[tuple[str, str]]:
    texts = [r.message for r in result.sink.records] + [result.outcome.message]
    leaks = [(text, how) for text in texts for how in _leaks(text, secret)]
    # Nor a piece of it (a line cut in the middle of the secret, say).
    leaks += [(text, "a piece") for text in texts if secret[:4] in text or secret[-6:] in text]
    return leaks


def _secret_shell(script: str, **env: str) -> job_pb2.JobConfig:
    config = shell_job("sh", "-c", script, env=env)
    config.secret_env["CANARY"] = CANARY
    return config


def _secret_python(code: str) -> job_pb2.JobConfig:
    config = shell_job(sys.executable, "-I", "-c", code)
    config.secret_env["CANARY"] = CANARY
    return config


# ------------------------------------------------------------------ forms and values


@pytest.mark.parametrize("offset", [0, 1, 2])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_inside_a_longer_stream_is_masked(offset: int, encode: object) -> None:
    masker = Masker.of([CANARY])
    assert masker is not None
    assert callable(encode)
    stream = encode(b"header:"[:offset] + CANARY.encode() + b" and more bytes after").decode()
    masked = masker.mask(stream)
    assert MASK in masked
    assert not _leaks(masked)


@pytest.mark.parametrize("encode", [quote, quote_plus, lambda s: quote(s, safe="")])
def test_url_encoded_forms_are_masked(encode: object) -> None:
    masker = Masker.of([CANARY])
    assert masker is not None and callable(encode)
    encoded = encode(CANARY)
    assert masker.mask(f"GET /x?token={encoded}&y=1") == f"GET /x?token={MASK}&y=1"
    lower_hex = re.sub("%[0-9A-F]{2}", lambda match: match.group().lower(), encoded)
    assert masker.mask(lower_hex) == MASK  # lower-case hex escapes too


def test_json_and_repr_escapes_are_masked() -> None:
    masker = Masker.of([CANARY])
    assert masker is not None
    for text in (json.dumps({"t": CANARY}), json.dumps([CANARY], ensure_ascii=False)):
        assert CANARY not in str(json.loads(masker.mask(text)))
    assert masker.mask(repr(CANARY)) == f"'{MASK}'"


def test_short_values_are_not_masked() -> None:
    short = "x" * (MIN_SECRET_CHARS - 1)
    assert encoded_forms(short) == set()
    assert Masker.of([short, ""]) is None
    config = job_pb2.JobConfig(secret_env={"A": "abc", "B": "no"})
    assert Masker.for_job(config) is None  # nothing to mask: no masker, no cost


def test_every_line_of_a_multi_line_secret_is_masked() -> None:
    key = (
        "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----"
    )
    masker = Masker.of([key])
    assert masker is not None
    for line in key.splitlines():
        assert masker.mask(f"> {line}") == f"> {MASK}"


def test_overlapping_secrets_leave_no_piece_visible() -> None:
    masker = Masker.of(["abcdefgh", "fghijklm"])
    assert masker is not None
    assert masker.mask("xx abcdefghijklm yy") == f"xx {MASK} yy"


def test_many_secrets_are_found_by_one_trie_regex() -> None:
    values = [f"shared-prefix-{i:03d}/+é" for i in range(40)]  # past the str-search path
    masker = Masker.of([*values, "shared-prefix-0"])
    assert masker is not None and len(masker.forms) > 128
    for value in values:
        assert masker.mask(f"<{value}>") == f"<{MASK}>"
        encoded = base64.b64encode(value.encode()).decode()
        assert masker.mask(encoded) == MASK
    assert masker.mask("<shared-prefix-0>") == f"<{MASK}>"
    assert masker.mask("shared-prefix") == "shared-prefix"


def test_job_secrets_cover_env_git_token_and_dsn() -> None:
    config = job_pb2.JobConfig(
        secret_env={"API_KEY": "key-value-1"},
        source=job_pb2.Source(
            git=job_pb2.GitSource(repo_url="https://h/r.git", access_token="ghp_token-2")
        ),
        sql_target=job_pb2.SqlTarget(dsn="postgresql://u:p%40ss-word@db:5432/x"),
    )
    values = job_secrets(config)
    assert {"key-value-1", "ghp_token-2", "p@ss-word", "p%40ss-word"} <= set(values)
    assert "postgresql://u:p%40ss-word@db:5432/x" in values


@pytest.mark.parametrize(
    ("dsn", "password"),
    [
        ("postgresql://user:s3cr%2Ft@host/db", "s3cr/t"),
        ("postgres://host/db?user=u&password=qs-pass", "qs-pass"),
        ("host=db user=u password=kv-pass dbname=x", "kv-pass"),
        ("host=db password='with space\\'s' dbname=x", "with space's"),
    ],
)
def test_dsn_passwords(dsn: str, password: str) -> None:
    assert password in dsn_passwords(dsn)


# ------------------------------------------------------------------ the output collector


def test_a_secret_split_at_any_byte_between_chunks_is_masked() -> None:
    line = f"token={CANARY} end\n".encode()
    for cut in range(1, len(line)):
        sink = MemorySink()
        collector = OutputCollector(sink, masker=Masker.of([CANARY]))
        collector.feed(Stream.STDOUT, line[:cut])
        collector.feed(Stream.STDOUT, line[cut:])
        collector.close()
        assert sink.lines() == [f"token={MASK} end"], cut


def test_a_secret_fed_byte_by_byte_and_without_a_final_line_break_is_masked() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, masker=Masker.of([CANARY]))
    for byte in f"a\n{CANARY}".encode():
        collector.feed(Stream.STDERR, bytes([byte]))
    collector.close()
    assert sink.lines(Stream.STDERR) == ["a", MASK]


def test_a_secret_cut_by_the_line_limit_loses_its_kept_beginning() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, max_line_bytes=100, masker=Masker.of([CANARY]))
    line = "x" * 95 + CANARY + "y" * 50
    collector.feed(Stream.STDOUT, line.encode() + b"\n")
    collector.close()
    (message,) = sink.lines()
    dropped = len(line.encode()) - 95 - len(CANARY[:5].encode())
    assert message == "x" * 95 + MASK + truncation_marker(dropped)


def test_system_entries_are_masked_and_only_secret_lines_change() -> None:
    sink = MemorySink()
    collector = OutputCollector(sink, masker=Masker.of([CANARY]))
    collector.system(f"git failed: could not read {CANARY}")
    lines = [f"line {i}" for i in range(50)] + [f"has {CANARY}"]
    collector.feed(Stream.STDOUT, ("\n".join(lines) + "\n").encode())
    collector.close()
    assert sink.system() == [f"git failed: could not read {MASK}"]
    assert sink.lines() == [*lines[:-1], f"has {MASK}"]


# ------------------------------------------------------------------ real jobs

SPLIT_WRITES = """
import os, sys, time
secret = os.environ["CANARY"]
for stream in (sys.stdout, sys.stderr):
    stream.write("split: " + secret[:7]); stream.flush()
    time.sleep(0.2)  # two reads of the pipe
    stream.write(secret[7:] + " done\\n"); stream.flush()
"""

ENCODINGS = """
import base64, json, os, urllib.parse
secret = os.environ["CANARY"]
raw = secret.encode()
print("plain", secret)
for prefix in (b"", b"k", b"ke"):
    print("b64", base64.b64encode(prefix + raw + b"tail").decode())
    print("b64url", base64.urlsafe_b64encode(prefix + raw + b"tail").decode())
print("quote", urllib.parse.quote(secret, safe=""))
print("quote_slash", urllib.parse.quote(secret))
print("quote_plus", urllib.parse.quote_plus(secret))
print(json.dumps({"level": "error", "token": secret}))
print("long", "z" * 10000 + secret + "z" * 10)
print("cut", "z" * (16 * 1024 - 4) + secret)
print("past the limit", "z" * 20000 + secret)
"""


async def test_a_job_printing_its_secret_in_every_form_leaks_none(
    options: ExecutionOptions,
) -> None:
    result = await run_job(_secret_python(ENCODINGS), options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED
    stdout = result.sink.lines()
    assert len(stdout) == 14
    assert stdout[0] == f"plain {MASK}"
    assert not _records_leak(result)


async def test_the_base64_tool_and_shell_output_leak_nothing(options: ExecutionOptions) -> None:
    script = textwrap.dedent(
        """
        printf '%s' "$CANARY" | base64
        printf 'x%s' "$CANARY" | base64 -w0; echo
        printf 'xy%s\\n' "$CANARY" | base64 | tr '+/' '-_'
        echo "to stderr: $CANARY" >&2
        exit 3
        """
    )
    result = await run_job(_secret_shell(script), options)
    assert result.outcome.exit_code == 3
    assert MASK in result.outcome.message  # the quoted stderr, masked
    assert len(result.sink.lines()) == 3
    assert not _records_leak(result)


async def test_a_secret_split_across_writes_is_masked(options: ExecutionOptions) -> None:
    result = await run_job(_secret_python(SPLIT_WRITES), options)
    assert result.sink.lines() == [f"split: {MASK} done"]
    assert result.sink.lines(Stream.STDERR) == [f"split: {MASK} done"]
    assert not _records_leak(result)


async def test_worker_entries_and_the_outcome_are_masked(options: ExecutionOptions) -> None:
    # A source error quoting the secret (here: a workspace path named after it).
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_PYTHON,
        source=job_pb2.Source(workspace=job_pb2.WorkspaceSource(path=f"x-{CANARY}")),
        source_location="main.py",
        secret_env={"CANARY": CANARY},
    )
    result = await run_job(config, options)
    assert result.outcome.reason == run_pb2.RUN_REASON_SOURCE_UNAVAILABLE
    assert any(MASK in line for line in result.sink.system())
    assert not _records_leak(result)


PROCESS_LOG = """
import structlog, sys
from batchyard.worker.process_log import configure_process_logging
from batchyard.worker.output.masking import Masker, use_in_process_log
configure_process_logging(sys.argv[1])
secret = sys.argv[2]
use_in_process_log(Masker.of([secret]))
def fetch(config):
    raise RuntimeError(f"fetch failed for {config}")
try:
    fetch({"access_token": secret})
except RuntimeError:
    structlog.get_logger("worker").exception("attempt_crashed", detail=secret, r=repr(secret))
import logging
logging.getLogger("botocore").warning("request with %s failed", secret)
use_in_process_log(None)  # outside any attempt: frames' locals are not rendered either
def crash():
    hidden = "hidden-" + "local-value"
    raise RuntimeError("boom")
try:
    crash()
except RuntimeError:
    structlog.get_logger("worker").exception("worker_crashed")
"""


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_the_process_log_masks_the_secrets_of_the_attempt(log_format: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROCESS_LOG, log_format, CANARY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    output = done.stdout + done.stderr
    assert "attempt_crashed" in output and "fetch failed for" in output
    assert MASK in output
    assert CANARY[:6] not in output and CANARY[-6:] not in output
    assert "worker_crashed" in output and "hidden-local-value" not in output


@pytest.mark.parametrize("how", ["connection", "dsn"])
async def test_a_sql_jobs_target_password_is_masked_in_what_it_prints(
    options: ExecutionOptions, sql_target_dsn: str, how: str
) -> None:
    password = urlsplit(sql_target_dsn).password
    assert password
    # The statement itself quotes the password: the runner's log of it must not.
    text = f"SELECT '{password}' AS echoed, {password!r} = '' AS empty;"
    if how == "connection":
        target = job_pb2.SqlTarget(connection="target")
        options = replace(options, sql_targets={"target": sql_target_dsn})
    else:
        target = job_pb2.SqlTarget(dsn=sql_target_dsn)
    config = job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SQL,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text=text)),
        sql_target=target,
    )
    result = await run_job(config, options)
    assert result.outcome.status == run_pb2.RUN_STATUS_SUCCEEDED, result.outcome.message
    texts = [record.message for record in result.sink.records] + [result.outcome.message]
    assert any(MASK in text for text in texts)
    assert not [text for text in texts if password in text or sql_target_dsn in text]
