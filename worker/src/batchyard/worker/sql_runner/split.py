"""Splitting a SQL file into statements, the way psql does, without a server.

A ``;`` ends a statement unless it is inside:

* a string: ``'it''s'``, ``E'it\\'s'`` (backslash escapes only after an ``E`` prefix),
  ``U&'…'``, ``B'…'``, ``X'…'``;
* a double-quoted identifier: ``"a;""b"``;
* a dollar-quoted string: ``$$…$$``, ``$body$…$body$`` (a tag is an identifier without
  ``$``; ``$1`` is a parameter, and ``$`` inside an identifier, ``a$b``, is part of it);
* a comment: ``-- …`` to the end of the line, ``/* … */`` nested;
* parentheses (``CREATE RULE … DO (…; …)``);
* the ``BEGIN ATOMIC … END`` body of ``CREATE [OR REPLACE] FUNCTION|PROCEDURE`` (psql's
  heuristic: ``BEGIN``/``CASE`` open and ``END`` closes a block in such a statement).

Statements holding only white space and comments are skipped. Whatever is unterminated at
the end of the file (a quote, a comment) runs to the end and becomes part of the last
statement, so the server reports it. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT_START = r"A-Za-z_\x80-\U0010ffff"
_WORD = re.compile(rf"[{_IDENT_START}][{_IDENT_START}0-9$]*")
_NUMBER = re.compile(rf"[0-9][{_IDENT_START}0-9.]*")
_DOLLAR_TAG = re.compile(rf"\$(?:[{_IDENT_START}][{_IDENT_START}0-9]*)?\$")
_QUOTED_BODY = {
    "'": re.compile(r"[^']*(?:''[^']*)*'"),  # a doubled quote stands for itself
    '"': re.compile(r'[^"]*(?:""[^"]*)*"'),
}
_E_STRING_BODY = re.compile(r"[^'\\]*(?:(?:\\.|'')[^'\\]*)*'", re.DOTALL)
_COMMENT_MARK = re.compile(r"/\*|\*/")
_SPACE = frozenset(" \t\n\r\f\v")
_ROUTINES = frozenset({"function", "procedure"})


@dataclass(frozen=True)
class Statement:
    """One statement of a file."""

    text: str
    """From its first token to the end, without the ``;`` and trailing white space."""
    line: int
    """The 1-based line of the file its first token is on."""
    offset: int
    """The index of its first character in the file's text."""
    first_word: str
    """Its first keyword, lower case ("select", "with", …; "" when it starts otherwise)."""


def split_statements(sql: str) -> list[Statement]:
    """The statements of ``sql``, in order."""
    return list(_Splitter(sql).statements())


class _Splitter:
    """One pass over the text; the state is that of the statement being read."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.start: int | None = None
        self.words: list[str] = []
        self.parens = 0
        self.blocks = 0
        self._line = 1
        self._line_at = 0

    def statements(self) -> list[Statement]:
        sql, found = self.sql, []
        i, end = 0, len(sql)
        while i < end:
            char = sql[i]
            if char in _SPACE:
                i += 1
            elif sql.startswith("--", i):
                newline = sql.find("\n", i)
                i = end if newline < 0 else newline + 1
            elif sql.startswith("/*", i):
                i = _skip_block_comment(sql, i)
            elif char == ";" and self.parens == 0 and self.blocks == 0:
                if self.start is not None:
                    found.append(self._statement(i))
                self._reset()
                i += 1
            else:
                if self.start is None:
                    self.start = i
                i = self._token(i)
        if self.start is not None:
            found.append(self._statement(end))
        return found

    def _token(self, i: int) -> int:
        """Reads the token at ``i`` (not white space, not a comment); returns its end."""
        sql, char = self.sql, self.sql[i]
        if char == "'":
            return _skip_string(sql, i + 1, backslashes=False)
        if char == '"':
            return _skip_string(sql, i + 1, backslashes=False, quote='"')
        if char == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is None:
                return i + 1
            close = sql.find(tag.group(), tag.end())
            return len(sql) if close < 0 else close + len(tag.group())
        if char == "(":
            self.parens += 1
        elif char == ")":
            self.parens = max(0, self.parens - 1)
        elif (number := _NUMBER.match(sql, i)) is not None:
            return number.end()
        elif (word := _WORD.match(sql, i)) is not None:
            if word.group() in ("e", "E") and sql.startswith("'", word.end()):
                return _skip_string(sql, word.end() + 1, backslashes=True)
            self._word(word.group().lower())
            return word.end()
        return i + 1

    def _word(self, word: str) -> None:
        """psql's BEGIN ATOMIC heuristic: only in CREATE [OR REPLACE] FUNCTION|PROCEDURE."""
        self.words.append(word)
        if self.parens or not _creates_routine(self.words):
            return
        if word == "begin" or (word == "case" and self.blocks):
            self.blocks += 1
        elif word == "end" and self.blocks:
            self.blocks -= 1

    def _statement(self, end: int) -> Statement:
        start = self.start
        assert start is not None
        self._line += self.sql.count("\n", self._line_at, start)
        self._line_at = start
        first = self.words[0] if self.words and _starts_with_word(self.sql, start) else ""
        text = self.sql[start:end].rstrip()
        return Statement(text=text, line=self._line, offset=start, first_word=first)

    def _reset(self) -> None:
        self.start = None
        self.words = []
        self.parens = 0
        self.blocks = 0


def _creates_routine(words: list[str]) -> bool:
    if len(words) < 2 or words[0] != "create":
        return False
    if words[1] in _ROUTINES:
        return True
    return len(words) >= 4 and words[1:3] == ["or", "replace"] and words[3] in _ROUTINES


def _starts_with_word(sql: str, start: int) -> bool:
    """Whether the statement's first token is a word, parentheses (``(SELECT …)``) aside."""
    i = start
    while i < len(sql) and (sql[i] == "(" or sql[i] in _SPACE):
        i += 1
    return _WORD.match(sql, i) is not None and not sql.startswith(("e'", "E'"), i)


def _skip_string(sql: str, i: int, *, backslashes: bool, quote: str = "'") -> int:
    """The end of a quoted string or identifier whose body starts at ``i``."""
    pattern = _E_STRING_BODY if backslashes else _QUOTED_BODY[quote]
    match = pattern.match(sql, i)
    return len(sql) if match is None else match.end()


def _skip_block_comment(sql: str, i: int) -> int:
    """The end of the (nested) ``/* */`` comment starting at ``i``."""
    depth = 0
    for mark in _COMMENT_MARK.finditer(sql, i):
        depth += 1 if mark.group() == "/*" else -1
        if depth == 0:
            return mark.end()
    return len(sql)
