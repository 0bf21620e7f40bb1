"""The plain (non-async) form of the provider: the asyncio provider on a private loop thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from seamfill.sdk.errors import InvalidArgument
from seamfill.sdk.result import SeamlessResult
from seamfill.sdk.settings import SeamlessSettings
from seamfill.sdk.types import Coverage

if TYPE_CHECKING:
    from seamfill.sdk.provider import AsyncSeamlessProvider

T = TypeVar("T")


class SeamlessProvider:
    """The provider for plain (non-async) code: the asyncio provider on a private loop thread.

    Use as a context manager, or call :meth:`close`. ``aio`` is the asyncio provider itself.
    """

    def __init__(
        self,
        settings: SeamlessSettings | None = None,
        *,
        fetcher: Any = None,
        live_fetcher: Any = None,
    ) -> None:
        from seamfill.sdk.provider import AsyncSeamlessProvider

        self.aio: AsyncSeamlessProvider = AsyncSeamlessProvider(
            settings, fetcher=fetcher, live_fetcher=live_fetcher
        )
        self.settings = self.aio.settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="seamfill-provider", daemon=True
        )
        self._thread.start()
        self._closed = False

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise InvalidArgument("the provider is closed: create a new one")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def read(self, start: Any, end: Any, *, node_id: str, interval: Any = None) -> SeamlessResult:
        """See :meth:`AsyncSeamlessProvider.read`."""
        return self._call(self.aio.read(start, end, node_id=node_id, interval=interval))

    def fetch(
        self, start: Any, end: Any, *, node_id: str, interval: Any = None, output: str = "pandas"
    ) -> Any:
        """See :meth:`AsyncSeamlessProvider.fetch`."""
        return self._call(
            self.aio.fetch(start, end, node_id=node_id, interval=interval, output=output)
        )

    def iter_batches(
        self,
        start: Any,
        end: Any,
        *,
        node_id: str,
        interval: Any = None,
        batch_rows: int = 100_000,
        output: str = "arrow",
    ) -> Iterator[Any]:
        """See :meth:`AsyncSeamlessProvider.iter_batches`; a plain iterator."""
        agen = self.aio.iter_batches(
            start, end, node_id=node_id, interval=interval, batch_rows=batch_rows, output=output
        )
        try:
            while True:
                try:
                    yield self._call(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if not self._closed:
                self._call(agen.aclose())

    def coverage(
        self, start: Any = None, end: Any = None, *, node_id: str, interval: Any = None
    ) -> Coverage:
        """See :meth:`AsyncSeamlessProvider.coverage`."""
        return self._call(self.aio.coverage(start, end, node_id=node_id, interval=interval))

    def ensure_range(
        self, start: Any, end: Any, *, node_id: str, interval: Any = None, wait: bool = False
    ) -> Coverage:
        """See :meth:`AsyncSeamlessProvider.ensure_range`."""
        return self._call(
            self.aio.ensure_range(start, end, node_id=node_id, interval=interval, wait=wait)
        )

    def fill_missing(self, start: Any, end: Any, *, node_id: str, interval: Any = None) -> Coverage:
        """See :meth:`AsyncSeamlessProvider.fill_missing`."""
        return self._call(self.aio.fill_missing(start, end, node_id=node_id, interval=interval))

    def close(self) -> None:
        """Close the asyncio provider and stop the loop thread."""
        if self._closed:
            return
        self._call(self.aio.aclose())
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SeamlessProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
