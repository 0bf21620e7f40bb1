"""The ``ccxt`` fetcher: OHLCV bars from any exchange ccxt supports (the worker's ``ccxt`` extra).

A dataset with source ``ccxt:binance`` is served by ccxt's ``binance`` class. A chunk is fetched
in pages of the exchange's own limit (ccxt's ``features``; option ``page_limit`` overrides), and
before every page the fetcher takes a token from the fleet-wide rate limit of its source (the
coordinator's ``TakeTokens``), because one API key is shared by every worker. Paging goes on to
the end of the chunk's range: an empty page (exchanges return them inside their history, e.g.
across a maintenance window) moves on by one page's span, so a chunk is covered-empty only when
every page of its range came back empty.

Errors are classified by what the exchange answered: 429/418, 408, 5xx, timeouts and connection
failures are retryable; other 4xx (bad symbol, bad request, authentication) are terminal. When
there is no HTTP status to go by, ccxt's own classes decide (``NetworkError`` retryable, other
``ExchangeError`` terminal).

Options (the dataset's ``options``): ``exchange`` (overrides the name in the source),
``page_limit``, and any ccxt constructor setting such as ``apiKey`` / ``secret``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from seamfill.core.errors import ConfigError, FetchError
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.worker.fetchers.files import interval_name

__all__ = ["CcxtFetcher", "RateLimiter"]

RateLimiter = Callable[[str, int], Awaitable[None]]
"""``await limiter(source, tokens)`` returns once the fleet-wide bucket granted the tokens."""

_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
_RETRYABLE_4XX = {408, 418, 425, 429}
# The HTTP status of the last response in this task; ccxt's error classes alone cannot tell a
# bare 400 (terminal) from a 503 on some exchanges.
_last_status: contextvars.ContextVar[int | None] = contextvars.ContextVar("status", default=None)


class CcxtFetcher:
    """Pages OHLCV through ccxt's async exchange classes; one exchange instance per name.

    ``session`` (tests, proxies) is handed to ccxt as its aiohttp-compatible session.
    """

    def __init__(
        self,
        *,
        exchange: str = "",
        page_limit: int | str = 0,
        session: Any = None,
        rate_limiter: RateLimiter | None = None,
        **config: Any,
    ) -> None:
        self.exchange_name = exchange
        self.page_limit = int(page_limit)
        self.rate_limiter = rate_limiter
        self._config = dict(config)
        if session is not None:
            self._config["session"] = session
        self._exchanges: dict[str, Any] = {}

    def use_rate_limiter(self, limiter: RateLimiter) -> None:
        """Take tokens from ``limiter`` before every request (the worker passes TakeTokens)."""
        self.rate_limiter = limiter

    def _exchange(self, dataset: Dataset) -> Any:
        name = self.exchange_name or dataset.source.partition(":")[2]
        cached = self._exchanges.get(name)
        if cached is not None:
            return cached
        try:
            import ccxt.async_support as ccxt_async
        except ImportError as e:
            raise ConfigError("the ccxt fetcher needs ccxt: install seamfill-worker[ccxt]") from e
        cls = getattr(ccxt_async, name, None) if name else None
        if cls is None:
            raise FetchError(
                f"dataset {dataset.name!r} source {dataset.source!r} names no ccxt "
                "exchange: write it as ccxt:<exchange id>, e.g. ccxt:binance",
                retryable=False,
            )
        exchange = cls(self._config)
        original = exchange.on_rest_response

        def record(
            code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any
        ) -> Any:
            _last_status.set(int(code) if code else None)
            return original(code, reason, url, method, headers, body, *rest)

        exchange.on_rest_response = record
        self._exchanges[name] = exchange
        return exchange

    def _limit(self, exchange: Any) -> int:
        if self.page_limit > 0:
            return self.page_limit
        features = getattr(exchange, "features", None) or {}
        for kind in ("spot", "swap", "future"):
            limit = ((features.get(kind) or {}).get("fetchOHLCV") or {}).get("limit")
            if isinstance(limit, int) and limit > 0:
                return limit
        return 500

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        exchange = self._exchange(dataset)
        timeframe = interval_name(dataset.interval_us)
        if timeframe not in (exchange.timeframes or {}):
            raise FetchError(
                f"{exchange.id} has no {timeframe} bars (has "
                f"{', '.join(exchange.timeframes or {})}): fix dataset "
                f"{dataset.name!r}'s interval",
                retryable=False,
            )
        limit = self._limit(exchange)
        step_ms = dataset.interval_us // 1000
        since, end_ms = -(-range.start_us // 1000), -(-range.end_us // 1000)
        pages: list[list[Any]] = []
        while since < end_ms:
            if self.rate_limiter is not None:
                await self.rate_limiter(dataset.source, 1)
            rows = await self._page(exchange, series, timeframe, since, limit)
            rows = [r for r in rows if since <= r[0] < end_ms]
            if not rows:  # nothing in this page's span: the next one may hold rows
                since += limit * step_ms
                continue
            pages.append(rows)
            since = int(rows[-1][0]) + step_ms
        flat = [r[:6] for page in pages for r in page]
        frame = pd.DataFrame(flat, columns=_COLUMNS)
        frame["ts"] = frame["ts"].astype("int64") * 1000
        return frame.drop_duplicates("ts", keep="last", ignore_index=True)

    async def _page(
        self, exchange: Any, series: Series, timeframe: str, since: int, limit: int
    ) -> list[Any]:
        import ccxt

        _last_status.set(None)
        try:
            rows: list[Any] = await exchange.fetch_ohlcv(series.symbol, timeframe, since, limit)
            return rows
        except ccxt.BaseError as e:
            status = _last_status.get()
            what = (
                f"{exchange.id} answered {status or type(e).__name__} fetching "
                f"{series.symbol!r} {timeframe} since {since}ms"
            )
            if _retryable(status, e, ccxt):
                raise FetchError(f"{what}: {e}; will retry", retryable=True) from e
            raise FetchError(
                f"{what}: {e}; check the symbol, the dataset's options and the API "
                "key, then requeue",
                retryable=False,
            ) from e

    async def aclose(self) -> None:
        """Close the exchanges' HTTP sessions."""
        exchanges, self._exchanges = self._exchanges, {}
        for exchange in exchanges.values():
            exchange.timeout_on_exit = 0
            await exchange.close()


def _retryable(status: int | None, error: Exception, ccxt: Any) -> bool:
    if status is not None and status >= 400:
        return status in _RETRYABLE_4XX or status >= 500
    return isinstance(error, ccxt.NetworkError)
