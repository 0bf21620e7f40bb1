"""Async code for synchronous callers: one private event loop on a thread, through anyio's
blocking portal (:func:`anyio.from_thread.start_blocking_portal`).

The plain provider and the plain coordinator client both run their asyncio counterpart here;
gRPC's asyncio channels stay on the loop that made them.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from seamfill.core.errors import InvalidArgument

__all__ = ["Portal"]

T = TypeVar("T")


class Portal:
    """A running event loop thread; :meth:`call` runs a coroutine function there and waits."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._cm: AbstractContextManager[BlockingPortal] = start_blocking_portal("asyncio")
        self._portal: BlockingPortal | None = self._cm.__enter__()

    def call(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        if self._portal is None:
            raise InvalidArgument(f"the {self._what} is closed: create a new one")
        return self._portal.call(functools.partial(fn, *args, **kwargs))

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """The items of ``agen`` (made on this loop), one portal call each."""
        try:
            while True:
                try:
                    yield self.call(agen.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and self._portal is not None:
                self.call(aclose)

    @property
    def closed(self) -> bool:
        return self._portal is None

    def close(self) -> None:
        """Stop the loop thread (idempotent)."""
        if self._portal is None:
            return
        self._portal = None
        self._cm.__exit__(None, None, None)
