"""Splitting SQL files into statements: examples of every quoting rule, and properties over
generated files (statements built from tokens that hide ``;``, joined with ``;``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchyard.worker.sql_runner.split import Statement, split_statements


def texts(sql: str) -> list[str]:
    return [statement.text for statement in split_statements(sql)]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("", []),
        ("  \n\t", []),
        (";;; ;\n;", []),
        ("-- only a comment", []),
        ("/* only a comment; */ ; -- and another;", []),
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1;SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT 1;\n\n  SELECT 2  \n", ["SELECT 1", "SELECT 2"]),
        ("SELECT 'a;b', 'it''s;'; SELECT 2", ["SELECT 'a;b', 'it''s;'", "SELECT 2"]),
        ("SELECT '';SELECT 2", ["SELECT ''", "SELECT 2"]),
        ('SELECT "a;""b" FROM t; SELECT 2', ['SELECT "a;""b" FROM t', "SELECT 2"]),
        ("SELECT E'x\\';y'; SELECT 2", ["SELECT E'x\\';y'", "SELECT 2"]),
        ("SELECT e'\\\\'; SELECT 2", ["SELECT e'\\\\'", "SELECT 2"]),
        # Without the E prefix a backslash is an ordinary character.
        ("SELECT 'x\\'; SELECT 2", ["SELECT 'x\\'", "SELECT 2"]),
        # An identifier ending in e is not an E prefix.
        ("SELECT 1 WHERE'a\\'=';'; SELECT 2", ["SELECT 1 WHERE'a\\'=';'", "SELECT 2"]),
        ("SELECT U&'d\\0061;'; SELECT 2", ["SELECT U&'d\\0061;'", "SELECT 2"]),
        ("SELECT B'1;', X'1;'; SELECT 2", ["SELECT B'1;', X'1;'", "SELECT 2"]),
        ("SELECT $$a;b$$; SELECT 2", ["SELECT $$a;b$$", "SELECT 2"]),
        ("SELECT $t$ $$; $t$; SELECT 2", ["SELECT $t$ $$; $t$", "SELECT 2"]),
        ("SELECT $a$ $b$ ; $b$ $a$; SELECT 2", ["SELECT $a$ $b$ ; $b$ $a$", "SELECT 2"]),
        ("SELECT $_1$;$_1$; SELECT 2", ["SELECT $_1$;$_1$", "SELECT 2"]),
        # $1 is a parameter and a$b an identifier: neither opens a dollar quote.
        ("SELECT $1; SELECT a$b$; SELECT 2", ["SELECT $1", "SELECT a$b$", "SELECT 2"]),
        ("SELECT 1 -- no; split\n; SELECT 2", ["SELECT 1 -- no; split", "SELECT 2"]),
        (
            "SELECT 1 /* a /* nested; */ still; */; SELECT 2",
            ["SELECT 1 /* a /* nested; */ still; */", "SELECT 2"],
        ),
        ("SELECT 1 /**/; SELECT 2", ["SELECT 1 /**/", "SELECT 2"]),
        ("SELECT 2 - -1; SELECT 3", ["SELECT 2 - -1", "SELECT 3"]),
        (
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); "
            "INSERT INTO b VALUES (2)); SELECT 2",
            [
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); "
                "INSERT INTO b VALUES (2))",
                "SELECT 2",
            ],
        ),
        # Unterminated: the rest of the file, for the server to report.
        ("SELECT 1; SELECT 'open; SELECT 2", ["SELECT 1", "SELECT 'open; SELECT 2"]),
        ("SELECT 1; SELECT $$ open; SELECT 2", ["SELECT 1", "SELECT $$ open; SELECT 2"]),
        ("SELECT 1; SELECT /* open; SELECT 2", ["SELECT 1", "SELECT /* open; SELECT 2"]),
        ("SELECT 1\r\n;\r\nSELECT 2\r\n", ["SELECT 1", "SELECT 2"]),
        ("SELECT 'ü;' AS ä; SELECT 2", ["SELECT 'ü;' AS ä", "SELECT 2"]),
    ],
)
def test_examples(sql: str, expected: list[str]) -> None:
    assert texts(sql) == expected


ATOMIC = """
CREATE OR REPLACE FUNCTION grade(n int) RETURNS text LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN n > 5 THEN 'high' ELSE 'low' END;
  SELECT 'unused';
END;
CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
BEGIN;
SELECT CASE WHEN true THEN 1 END;
END;
"""


def test_begin_atomic_bodies_stay_whole_and_transactions_split() -> None:
    statements = split_statements(ATOMIC)
    assert [s.first_word for s in statements] == [
        "create",
        "create",
        "create",
        "begin",
        "select",
        "end",
    ]
    assert statements[0].text.endswith("SELECT 'unused';\nEND")
    assert statements[1].text.endswith("INSERT INTO t VALUES (1); END")
    assert [s.line for s in statements] == [2, 7, 8, 9, 10, 11]


def test_lines_offsets_and_first_words() -> None:
    sql = "-- header\n\n/* c */ WITH x AS (SELECT 1) SELECT * FROM x;\n(SELECT 1);\nE'a';\n 42;"
    statements = split_statements(sql)
    assert [(s.line, s.first_word) for s in statements] == [
        (3, "with"),
        (4, "select"),
        (5, ""),
        (6, ""),
    ]
    for statement in statements:
        assert sql[statement.offset :].startswith(statement.text)


# ------------------------------------------------------------------ properties

_CHARS = st.sampled_from(list("ab ;'\"$\\-/*()\n\teE1_"))
_TEXT = st.text(_CHARS, max_size=12)
_WORDS = st.sampled_from(
    ["select", "a", "e", "E", "begin", "end", "case", "x$y", "1", "1.5", "$1", "ä", "u", "U&"]
)
_OPERATORS = st.sampled_from(["+", "-", "*", "/", "=", ",", "<>", ".", "::"])


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _e_string(text: str) -> str:
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@st.composite
def _dollar_quoted(draw: st.DrawFn) -> str:
    tag = draw(st.sampled_from(["", "a", "tag_1", "ü"]))
    body = draw(_TEXT.filter(lambda text: f"${tag}$" not in text))
    return f"${tag}${body}${tag}$"


_LINE_COMMENT = _TEXT.map(lambda text: "--" + text.replace("\n", " ") + "\n")
_BLOCK_BODY = st.text(st.sampled_from(list("ab ;'\"$\\-()\n")), max_size=8)
_BLOCK_COMMENT = st.recursive(
    _BLOCK_BODY.map(lambda text: f"/*{text}*/"),
    lambda inner: st.tuples(_BLOCK_BODY, inner, _BLOCK_BODY).map(lambda t: f"/*{''.join(t)}*/"),
    max_leaves=3,
)
_HIDING = st.one_of(
    _TEXT.map(_single_quoted),
    _TEXT.map(_e_string),
    _TEXT.map(_identifier),
    _dollar_quoted(),
    _LINE_COMMENT,
    _BLOCK_COMMENT,
)
_TOKEN = st.one_of(_WORDS, _OPERATORS, _HIDING)
_SPACE = st.sampled_from([" ", "\n", "  ", "\t"])


@st.composite
def _tokens(draw: st.DrawFn, depth: int = 0) -> list[str]:
    tokens = []
    for _ in range(draw(st.integers(0, 5))):
        if depth < 2 and draw(st.booleans()):
            inner = draw(_tokens(depth + 1))
            tokens += ["(", *inner, ";" if draw(st.booleans()) else "", ")"]
        else:
            tokens.append(draw(_TOKEN))
    return tokens


@st.composite
def _statement(draw: st.DrawFn) -> str:
    """Tokens separated by white space, starting with a word; no top-level ``;``."""
    tokens = [draw(_WORDS), *draw(_tokens())]
    spaces = [draw(_SPACE) for _ in tokens]
    return "".join(token + space for token, space in zip(tokens, spaces, strict=True))


_BETWEEN = st.lists(st.one_of(_SPACE, _LINE_COMMENT, _BLOCK_COMMENT, st.just(";")), max_size=3)


@st.composite
def _file(draw: st.DrawFn) -> tuple[str, list[tuple[str, int]]]:
    """A file and its statements' texts and first lines."""
    sql, expected = draw(_BETWEEN.map("".join)), []
    statements = draw(st.lists(_statement(), max_size=5))
    for index, raw in enumerate(statements):
        expected.append((raw.rstrip(), sql.count("\n") + 1))
        if index == len(statements) - 1 and draw(st.booleans()):
            return sql + raw, expected  # unterminated: it runs to the end of the file
        sql += raw + ";" + draw(_BETWEEN.map("".join))
    return sql, expected


@given(_file())
@settings(max_examples=400)
def test_generated_files_split_into_their_statements(
    case: tuple[str, list[tuple[str, int]]],
) -> None:
    sql, expected = case
    assert [(s.text, s.line) for s in split_statements(sql)] == expected


_ANY_SQL = st.text(st.sampled_from(list("ab ;'\"$\\-/*()\n\teE1_ä")), max_size=80)


@given(_ANY_SQL)
@settings(max_examples=400)
def test_any_text_splits_into_pieces_of_itself(sql: str) -> None:
    statements = split_statements(sql)
    end = 0
    for statement in statements:
        assert statement.offset >= end
        assert statement.text
        assert statement.text == statement.text.strip()
        assert sql[statement.offset :].startswith(statement.text)
        assert statement.line == sql.count("\n", 0, statement.offset) + 1
        end = statement.offset + len(statement.text)


@given(_ANY_SQL)
@settings(max_examples=400)
def test_a_statement_splits_into_itself(sql: str) -> None:
    for statement in split_statements(sql):
        [again] = split_statements(statement.text)
        assert again == Statement(statement.text, 1, 0, statement.first_word)
