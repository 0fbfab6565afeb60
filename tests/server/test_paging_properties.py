"""Properties of page tokens and page sizes (domain.paging): a token continues exactly the
query it came from, and anything else a client sends is INVALID_PAGE_TOKEN, never a crash
or a silently wrong page."""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from batchyard.server.domain import paging
from batchyard.server.domain.errors import InvalidArgument, InvalidPageToken

scalars = st.none() | st.booleans() | st.integers() | st.text()
keys = st.lists(scalars, min_size=1, max_size=4)
"""What listings put in a token: the last row's sort key (names, uuids, times, numbers)."""
filters = st.dictionaries(st.text(max_size=10), scalars | st.lists(st.text(), max_size=3))
URL_SAFE = set(string.ascii_letters + string.digits + "-_")


@given(keys, filters)
def test_a_token_continues_after_the_key_it_was_made_from(key: list[Any], f: dict) -> None:
    assert paging.decode(paging.encode(key, f), f) == key


@given(keys, filters)
def test_a_token_is_non_empty_and_url_safe_without_padding(key: list[Any], f: dict) -> None:
    token = paging.encode(key, f)
    assert token
    assert set(token) <= URL_SAFE


@given(keys, filters)
def test_the_order_filters_are_given_in_does_not_matter(key: list[Any], f: dict) -> None:
    reordered = dict(reversed(list(f.items())))
    assert paging.decode(paging.encode(key, f), reordered) == key


@given(keys, filters, filters)
def test_a_token_of_a_query_with_other_filters_is_refused(
    key: list[Any], made_for: dict, used_with: dict
) -> None:
    assume(made_for != used_with)
    token = paging.encode(key, made_for)
    with pytest.raises(InvalidPageToken):
        paging.decode(token, used_with)


@given(filters)
def test_an_empty_token_is_the_first_page(f: dict) -> None:
    assert paging.decode("", f) is None


@given(st.text(), filters)
def test_any_string_is_a_key_or_invalid_page_token(token: str, f: dict) -> None:
    try:
        key = paging.decode(token, f)
    except InvalidPageToken:
        return
    assert key is None or isinstance(key, list)


@given(st.binary(max_size=64), filters)
def test_any_bytes_behind_base64_are_a_key_or_invalid_page_token(raw: bytes, f: dict) -> None:
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    try:
        key = paging.decode(token, f)
    except InvalidPageToken:
        return
    assert key is None or isinstance(key, list)


@given(
    st.recursive(
        scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8
    )
)
def test_any_json_a_client_forges_without_our_fingerprint_is_refused(body: Any) -> None:
    """A forged body (any JSON but one carrying the filters' fingerprint) never decodes."""
    token = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    with pytest.raises(InvalidPageToken):
        paging.decode(token, {"workspace": "default"})


@given(keys, filters, st.data())
def test_a_changed_character_never_yields_another_query_page(
    key: list[Any], f: dict, data: st.DataObject
) -> None:
    """Tampering gives INVALID_PAGE_TOKEN or a key under the same filters, never a crash."""
    token = paging.encode(key, f)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(sorted(URL_SAFE - {token[at]})))
    try:
        got = paging.decode(token[:at] + char + token[at + 1 :], f)
    except InvalidPageToken:
        return
    assert isinstance(got, list)


@given(st.integers(max_value=-1))
def test_a_negative_page_size_is_the_callers_error(size: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        paging.page_size(size)
    assert [v.field for v in raised.value.violations] == ["page_size"]


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=1, max_value=5000),
    st.integers(min_value=1, max_value=5000),
)
def test_a_page_size_is_the_default_for_zero_else_capped(
    requested: int, default: int, maximum: int
) -> None:
    assume(default <= maximum)
    size = paging.page_size(requested, default, maximum)
    assert 1 <= size <= maximum
    assert size == (default if requested == 0 else min(requested, maximum))


def test_a_deeply_nested_forged_token_is_invalid_page_token() -> None:
    token = base64.urlsafe_b64encode(b"[" * 2000).decode()
    with pytest.raises(InvalidPageToken):
        paging.decode(token, {})
