"""The named-block loader: `:name` parameters compiled to `$n` once, bound by keyword."""

from __future__ import annotations

import re

import pytest

from batchyard.server.db import sql
from batchyard.server.db.sql import compile_named


def test_named_parameters_become_numbers_in_order_of_first_use():
    query = compile_named(
        "x", "SELECT :b, :a::int, :b::text[] FROM t WHERE c = :a AND d::jsonb ? 'k'"
    )
    assert query.text == "SELECT $1, $2::int, $1::text[] FROM t WHERE c = $2 AND d::jsonb ? 'k'"
    assert query.params == ("b", "a")


def test_strings_comments_and_casts_are_never_parameters():
    text = """-- a comment with :not_this and $1
SELECT ':nor_this', "col:umn", x::timestamptz, '10:30'::time /* :nor :these */
FROM t WHERE y = :real"""
    query = compile_named("x", text)
    assert query.params == ("real",)
    assert query.text == text.replace(":real", "$1")


def test_a_block_mixing_both_styles_is_refused():
    with pytest.raises(ValueError, match="mixes"):
        compile_named("x", "SELECT $1, :a")
    assert compile_named("x", "-- $1 in a comment\nSELECT :a").params == ("a",)
    assert compile_named("x", "SELECT $1, $2").params == ()


def test_bind_wants_every_parameter_and_nothing_else():
    text, *args = sql.bind(
        "log_chunks_after", run=1, after_attempt=2, after_seq=3, attempt=4, limit=5
    )
    query = sql.queries()["log_chunks_after"]
    assert text == query.text
    assert dict(zip(query.params, args, strict=True)) == {
        "run": 1,
        "after_attempt": 2,
        "after_seq": 3,
        "attempt": 4,
        "limit": 5,
    }
    with pytest.raises(TypeError, match=r"missing \['limit'\], unexpected \['lmit'\]"):
        sql.bind("log_chunks_after", run=1, after_attempt=2, after_seq=3, attempt=4, lmit=5)
    with pytest.raises(ValueError, match="positional"):
        sql.bind("log_end", run=1)


def test_no_query_takes_five_or_more_positional_parameters():
    for name, query in sql.queries().items():
        if not query.params:
            numbers = {int(n) for n in re.findall(r"\$(\d+)", query.text)}
            assert max(numbers, default=0) < 5, f"{name}: name its parameters"
