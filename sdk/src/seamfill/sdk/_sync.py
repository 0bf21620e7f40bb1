"""The plain (non-async) form of the provider: the asyncio provider on a private loop thread
(anyio's blocking portal)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from seamfill.core.types import Coverage
from seamfill.sdk.client._portal import Portal
from seamfill.sdk.result import SeamlessResult
from seamfill.sdk.settings import SeamlessSettings

if TYPE_CHECKING:
    from seamfill.sdk.provider import AsyncSeamlessProvider


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
        self._portal = Portal("provider")
        if self.settings.profile == "prod":
            try:
                self._portal.call(self.aio.check_profile)
            except BaseException:
                self.close()
                raise

    @classmethod
    def from_preset(
        cls, name: str, *, live_fetcher: Any = None, **overrides: Any
    ) -> SeamlessProvider:
        """A provider assembled from a named preset; see :meth:`SeamlessSettings.from_preset`."""
        return cls(SeamlessSettings.from_preset(name, **overrides), live_fetcher=live_fetcher)

    def read(
        self, start: Any, end: Any, *, node_id: str, interval: Any = None, context: Any = None
    ) -> SeamlessResult:
        """See :meth:`AsyncSeamlessProvider.read`."""
        return self._portal.call(
            self.aio.read, start, end, node_id=node_id, interval=interval, context=context
        )

    def fetch(
        self,
        start: Any,
        end: Any,
        *,
        node_id: str,
        interval: Any = None,
        output: str = "pandas",
        context: Any = None,
    ) -> Any:
        """See :meth:`AsyncSeamlessProvider.fetch`."""
        return self._portal.call(
            self.aio.fetch,
            start,
            end,
            node_id=node_id,
            interval=interval,
            output=output,
            context=context,
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
        return self._portal.iterate(agen)

    def coverage(
        self, start: Any = None, end: Any = None, *, node_id: str, interval: Any = None
    ) -> Coverage:
        """See :meth:`AsyncSeamlessProvider.coverage`."""
        return self._portal.call(self.aio.coverage, start, end, node_id=node_id, interval=interval)

    def ensure_range(
        self, start: Any, end: Any, *, node_id: str, interval: Any = None, wait: bool = False
    ) -> Coverage:
        """See :meth:`AsyncSeamlessProvider.ensure_range`."""
        return self._portal.call(
            self.aio.ensure_range, start, end, node_id=node_id, interval=interval, wait=wait
        )

    def fill_missing(self, start: Any, end: Any, *, node_id: str, interval: Any = None) -> Coverage:
        """See :meth:`AsyncSeamlessProvider.fill_missing`."""
        return self._portal.call(
            self.aio.fill_missing, start, end, node_id=node_id, interval=interval
        )

    def close(self) -> None:
        """Close the asyncio provider and stop the loop thread."""
        if self._portal.closed:
            return
        try:
            self._portal.call(self.aio.aclose)
        finally:
            self._portal.close()

    def __enter__(self) -> SeamlessProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
