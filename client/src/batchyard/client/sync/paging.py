"""Listings of the synchronous face: `Paged`, read page by page as it is iterated, and
`listing`, one over a List call, made through the call helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from batchyard.client.core.paging import PagePlan
from batchyard.client.core.requests import Listing
from batchyard.client.display import DISPLAY_LIMIT, ItemList, items_html
from batchyard.client.sync.call import Caller

T = TypeVar("T")


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


def listing(
    call: Caller,
    method: Callable[..., Any],
    spec: Listing[T],
    *,
    limit: int | None,
    page_size: int = 0,
) -> Paged[T]:
    """A `Paged` over the List call `method`: each iteration follows the page tokens
    through `call`, up to `limit` items (see `PagePlan`)."""

    def read(most: int | None) -> Iterator[T]:
        plan = PagePlan(most, page_size, spec.max_page_size)
        while plan:
            page = call(method, spec.request(plan.page_size(), plan.token), idempotent=True)
            yield from plan.take(spec.items(page), page.next_page_token)

    return Paged(read, spec.what, limit)
