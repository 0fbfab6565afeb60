"""The SQL runner's parts that need no database: its start, CSV, messages, secrets."""

from __future__ import annotations

import datetime
import decimal
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchyard.worker.sql_runner.csv_rows import CsvRecords, csv_line
from batchyard.worker.sql_runner.main import DSN_VARIABLE, main
from batchyard.worker.sql_runner.report import PREVIEW_CHARS, error_line, preview
from batchyard.worker.sql_runner.secrecy import scrub
from batchyard.worker.sql_runner.split import split_statements

DSN = "postgresql://reporter:p%40ss-canary@db.example:5432/analytics?sslmode=require"


def test_the_dsn_leaves_the_environment_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DSN_VARIABLE, DSN)
    empty = tmp_path / "q.sql"
    empty.write_text("-- nothing\n")
    assert main([str(empty)]) == 0
    assert DSN_VARIABLE not in os.environ
    assert capsys.readouterr().out == (
        "the SQL file holds no statements: nothing to run\n::progress 100\n"
    )


@pytest.mark.parametrize(
    ("argv", "dsn", "message"),
    [
        ([], DSN, "expected one SQL file, got 0 arguments (SQL jobs take no args)"),
        (["missing.sql"], DSN, "cannot read the SQL file: No such file or directory"),
        (["q.sql"], "", f"no target database: {DSN_VARIABLE} is not set"),
        (["latin1.sql"], DSN, "the SQL file is not UTF-8 text (byte 8)"),
    ],
)
def test_bad_invocations_exit_with_code_2(
    argv: list[str],
    dsn: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.sql").write_text("SELECT 1")
    (tmp_path / "latin1.sql").write_bytes("SELECT 'é'".encode("latin-1"))
    monkeypatch.setenv(DSN_VARIABLE, dsn)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"sql runner: {message}\n"


def test_csv_lines_quote_like_postgresql() -> None:
    values = [None, "", "plain", "a,b", 'say "hi"', "two\nlines", "\\.", "cr\r", " pad "]
    assert csv_line(values) == b',"",plain,"a,b","say ""hi""","two\nlines","\\.","cr\r", pad \n'


def test_csv_lines_write_values_in_postgresql_text_form() -> None:
    moment = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    values = [True, False, b"\x00\xff", moment, datetime.date(2024, 1, 2), decimal.Decimal("1.50")]
    assert csv_line(values) == b"t,f,\\x00ff,2024-01-02 03:04:05+00:00,2024-01-02,1.50\n"


@given(st.lists(st.lists(st.one_of(st.none(), st.text()), max_size=4), max_size=6), st.data())
def test_csv_records_are_counted_across_any_chunking(
    rows: list[list[str | None]], data: st.DataObject
) -> None:
    stream = b"".join(csv_line(row) for row in rows)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    records = CsvRecords()
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        records.feed(stream[start:end])
    assert records.count == len(rows)


def test_scrub_masks_the_dsn_and_its_password() -> None:
    message = f"could not use {DSN}: password p@ss-canary (raw p%40ss-canary) refused"
    assert scrub(message, DSN) == "could not use ***: password *** (raw ***) refused"
    query = "postgres://u@h/db?password=q-canary&sslmode=disable"
    assert scrub("bad q-canary", query) == "bad ***"
    assert scrub("nothing secret", "not a url") == "nothing secret"


def test_error_lines_follow_the_position_into_the_statement() -> None:
    [_, statement] = split_statements("SELECT 1;\n\nSELECT a,\n  b\n  FORM t;")
    assert statement.line == 3
    position = statement.text.index(" t") + 2  # 1-based
    assert error_line(statement, str(position)) == 5
    assert error_line(statement, position + 7, shift=7) == 5  # sent inside "COPY (\n…"
    assert error_line(statement, None) == 3
    assert error_line(statement, 10_000) == 3


def test_previews_are_one_line_and_cut() -> None:
    assert preview("SELECT\n  1,\t2") == "SELECT 1, 2"
    long = "SELECT " + "x, " * 200
    assert preview(long) == f"{long[:PREVIEW_CHARS]}… ({len(long)} characters)"
