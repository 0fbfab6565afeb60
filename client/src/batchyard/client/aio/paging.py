"""Listings of the asyncio face: `AsyncPaged`, read page by page as it is iterated, and
`alisting`, one over a List call, made through the call helper."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from batchyard.client.aio.call import AsyncCaller
from batchyard.client.core.paging import PagePlan
from batchyard.client.core.requests import Listing
from batchyard.client.display import ItemList

T = TypeVar("T")


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


def alisting(
    call: AsyncCaller,
    method: Callable[..., Any],
    spec: Listing[T],
    *,
    limit: int | None,
    page_size: int = 0,
) -> AsyncPaged[T]:
    """A `AsyncPaged` over the List call `method`: each iteration follows the page tokens
    through `call`, up to `limit` items (see `PagePlan`)."""

    async def read(most: int | None) -> AsyncIterator[T]:
        plan = PagePlan(most, page_size, spec.max_page_size)
        while plan:
            page = await call(method, spec.request(plan.page_size(), plan.token), idempotent=True)
            for item in plan.take(spec.items(page), page.next_page_token):
                yield item

    return AsyncPaged(read, spec.what, limit)
