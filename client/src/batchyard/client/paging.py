"""Following page tokens for the SDK's `iter` methods."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


P = TypeVar("P", bound=Page)


def paged(
    fetch: Callable[[int, str], P],
    items: Callable[[P], Sequence[T]],
    *,
    limit: int | None,
    page_size: int,
    max_page_size: int,
) -> Iterator[T]:
    """Every item of every page (`fetch(page_size, page_token)`), at most `limit` of them.

    `page_size` 0 asks for pages as large as `limit` needs (up to `max_page_size`), or the
    server's default when there is no limit.
    """
    token = ""
    remaining = limit
    while remaining is None or remaining > 0:
        size = page_size
        if remaining is not None:
            size = min(page_size or max_page_size, remaining)
        page = fetch(size, token)
        found = list(items(page))
        if remaining is not None:
            found = found[:remaining]
            remaining -= len(found)
        yield from found
        token = page.next_page_token
        if not token:
            return
