"""Following page tokens, the part both faces share: how many items a listing still
wants and the page size to ask for next (`PagePlan`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class Page(Protocol):
    """A response with a `next_page_token` (empty on the last page)."""

    @property
    def next_page_token(self) -> str: ...


P = TypeVar("P", bound=Page)


class PagePlan:
    """How many items a listing still wants, and the page size to ask for next.

    `page_size` 0 asks for pages as large as `limit` needs (up to `max_page_size`), or
    the server's default when there is no limit.
    """

    def __init__(self, limit: int | None, page_size: int, max_page_size: int) -> None:
        self.remaining, self._size, self._max = limit, page_size, max_page_size
        self.token = ""
        """The page token of the next page ("" for the first)."""
        self._ended = False

    def __bool__(self) -> bool:
        """Whether another page is to be read."""
        return not self._ended and (self.remaining is None or self.remaining > 0)

    def page_size(self) -> int:
        """`page_size`, or as large as the rest of `limit` needs (up to the maximum)."""
        if self.remaining is None:
            return self._size
        return min(self._size or self._max, self.remaining)

    def take(self, found: Sequence[T], next_page_token: str) -> list[T]:
        """The items of a page the listing still wants; remembers where to go on."""
        taken = list(found if self.remaining is None else found[: self.remaining])
        if self.remaining is not None:
            self.remaining -= len(taken)
        self.token = next_page_token
        self._ended = not next_page_token
        return taken
