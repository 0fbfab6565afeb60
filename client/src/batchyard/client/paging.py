"""Following page tokens: `paged` for the clients' `iter` methods, `Paged` and
`AsyncPaged` for the listings of `Client` and `AsyncClient`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from batchyard.client.display import DISPLAY_LIMIT, ItemList, items_html

T = TypeVar("T")


class Page(Protocol):
    """A response with a `next_page_token` (empty on the last page)."""

    @property
    def next_page_token(self) -> str: ...


P = TypeVar("P", bound=Page)


class _Left:
    """How many items a listing still wants, and the page size to ask for next."""

    def __init__(self, limit: int | None, page_size: int, max_page_size: int) -> None:
        self.remaining, self._size, self._max = limit, page_size, max_page_size

    def __bool__(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def page_size(self) -> int:
        """`page_size`, or as large as the rest of `limit` needs (up to the maximum)."""
        if self.remaining is None:
            return self._size
        return min(self._size or self._max, self.remaining)

    def take(self, found: Sequence[T]) -> list[T]:
        """The items of a page the listing still wants."""
        taken = list(found if self.remaining is None else found[: self.remaining])
        if self.remaining is not None:
            self.remaining -= len(taken)
        return taken


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
    token, left = "", _Left(limit, page_size, max_page_size)
    while left:
        page = fetch(left.page_size(), token)
        yield from left.take(items(page))
        token = page.next_page_token
        if not token:
            return


class Paged(Generic[T]):
    """A listing read page by page as it is iterated (what `client.runs.list()` and the
    other `list` methods return).

    Iterating calls the server for one page at a time, following page tokens, up to the
    listing's `limit`; each iteration starts again from the first page. `to_list()`
    reads it all into an `ItemList`, `first(n)` only as many as needed. In Jupyter it
    shows as a table of its first items.

        for run in client.runs.list(status="failed", limit=100):
            print(run.id, run.reason)
    """

    def __init__(self, read: Callable[[int | None], Iterator[T]], what: str, limit: int | None):
        self._read = read
        self.what = what
        """What is listed, e.g. "runs"."""
        self.limit = limit
        """The most items an iteration yields (None: all)."""

    def __iter__(self) -> Iterator[T]:
        return self._read(self.limit)

    def first(self, n: int = 1) -> ItemList[T]:
        """The first `n` items (fewer if there are not as many)."""
        wanted = n if self.limit is None else min(n, self.limit)
        return ItemList(self._read(wanted))

    def to_list(self) -> ItemList[T]:
        """Every item, as a list (that shows as a table in Jupyter)."""
        return ItemList(self)

    def __repr__(self) -> str:
        limit = "all" if self.limit is None else f"at most {self.limit}"
        return f"<Paged {self.what}: {limit}; iterate, or .to_list()>"

    def _repr_html_(self) -> str:
        shown = self.first(DISPLAY_LIMIT + 1)
        more = len(shown) > DISPLAY_LIMIT
        note = f"the first {DISPLAY_LIMIT}; iterate for more" if more else ""
        return items_html(shown[:DISPLAY_LIMIT], caption=self.what, note=note)


class AsyncPaged(Generic[T]):
    """The asyncio counterpart of `Paged`: ``async for run in client.runs.list(): ...``,
    or ``await client.runs.list().to_list()``."""

    def __init__(
        self, read: Callable[[int | None], AsyncIterator[T]], what: str, limit: int | None
    ):
        self._read = read
        self.what = what
        """What is listed, e.g. "runs"."""
        self.limit = limit
        """The most items an iteration yields (None: all)."""

    def __aiter__(self) -> AsyncIterator[T]:
        return self._read(self.limit)

    async def first(self, n: int = 1) -> ItemList[T]:
        """The first `n` items (fewer if there are not as many)."""
        wanted = n if self.limit is None else min(n, self.limit)
        return ItemList([item async for item in self._read(wanted)])

    async def to_list(self) -> ItemList[T]:
        """Every item, as a list (that shows as a table in Jupyter)."""
        return ItemList([item async for item in self])

    def __repr__(self) -> str:
        limit = "all" if self.limit is None else f"at most {self.limit}"
        return f"<AsyncPaged {self.what}: {limit}; async for, or await .to_list()>"


async def apaged(
    fetch: Callable[[int, str], Awaitable[P]],
    items: Callable[[P], Sequence[T]],
    *,
    limit: int | None,
    page_size: int,
    max_page_size: int,
) -> AsyncIterator[T]:
    """The asyncio counterpart of `paged`."""
    token, left = "", _Left(limit, page_size, max_page_size)
    while left:
        page = await fetch(left.page_size(), token)
        for item in left.take(items(page)):
            yield item
        token = page.next_page_token
        if not token:
            return
