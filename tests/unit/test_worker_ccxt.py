"""The ccxt fetcher through ccxt's own binance class, with recorded responses under its session.

Nothing here touches the network: the session ccxt is handed answers from recorded bodies (the
exchangeInfo of one market, and klines pages shaped exactly as binance returns them).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from seamfill.core.errors import FetchError
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.chunk import validate_frame
from seamfill.worker.fetchers.ccxt import CcxtFetcher

pytest.importorskip("ccxt")

MIN = 60_000_000
T0 = 1_700_000_000_000_000 // MIN * MIN
DS = Dataset("binance.ohlcv_1m", "ohlcv_1m", "ccxt:binance", MIN)
SERIES = Series(DS.name, "BTC/USDT")
EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 0,
    "rateLimits": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "permissions": ["SPOT"],
            "filters": [],
        }
    ],
}


class _Response:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.reason = "OK" if status == 200 else "Error"
        self.headers = {"Content-Type": "application/json"}
        self._body = body if isinstance(body, str) else json.dumps(body)

    async def text(self, errors: str = "strict") -> str:
        return self._body

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class RecordedSession:
    """What ccxt sees as its aiohttp session. ``script`` answers klines requests in order
    (a status and body, or an exception); after it runs out, klines come from ``listed``."""

    def __init__(self, script: list[Any] | None = None, listed_from_ms: int = 0) -> None:
        self.headers: dict[str, str] = {}
        self.script = list(script or [])
        self.klines_calls: list[dict[str, list[str]]] = []
        self.listed_from_ms = listed_from_ms

    def get(self, url: Any, **_: Any) -> _Response:
        parts = urlsplit(str(url))
        if parts.path.endswith("/exchangeInfo"):
            return _Response(200, EXCHANGE_INFO)
        query = parse_qs(parts.query)
        self.klines_calls.append(query)
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
            return _Response(*step)
        return _Response(200, self._klines(query))

    def _klines(self, query: dict[str, list[str]]) -> list[list[Any]]:
        start, limit = int(query["startTime"][0]), int(query["limit"][0])
        start = max(start, self.listed_from_ms)
        start = -(-start // 60_000) * 60_000
        return [
            [t, "1.0", "2.0", "0.5", "1.5", "10.0", t + 59_999, "15.0", 3, "5.0", "7.5", "0"]
            for t in range(start, start + limit * 60_000, 60_000)
        ]

    async def close(self) -> None:
        return None


async def _fetch(session: RecordedSession, rng: TimeRange, **options: Any) -> Any:
    fetcher = CcxtFetcher(session=session, enableRateLimit=False, **options)
    try:
        return await fetcher.fetch(SERIES, rng, DS)
    finally:
        await fetcher.aclose()


async def test_pages_by_the_exchange_limit_and_returns_the_range_on_the_grid() -> None:
    session = RecordedSession()
    rng = TimeRange(T0, T0 + 2500 * MIN)
    frame = await _fetch(session, rng)
    assert len(frame) == 2500
    assert [q["limit"] for q in session.klines_calls] == [["1000"]] * 3
    assert frame["ts"].iloc[0] == T0 and frame["ts"].iloc[-1] == T0 + 2499 * MIN
    validate_frame(frame, SERIES, rng, DS)


async def test_takes_a_fleet_wide_token_before_every_page() -> None:
    taken: list[tuple[str, int]] = []

    async def limiter(source: str, tokens: int) -> None:
        taken.append((source, tokens))

    session = RecordedSession()
    await _fetch(session, TimeRange(T0, T0 + 250 * MIN), page_limit="100", rate_limiter=limiter)
    assert taken == [("ccxt:binance", 1)] * 3 and len(session.klines_calls) == 3


async def test_before_listing_is_empty() -> None:
    # The exchange answers with bars after the range only: nothing to write, covered-empty.
    session = RecordedSession(listed_from_ms=(T0 + 10_000 * MIN) // 1000)
    frame = await _fetch(session, TimeRange(T0, T0 + 100 * MIN))
    assert frame.empty


@pytest.mark.parametrize(
    ("answer", "retryable", "says"),
    [
        ((429, {"code": -1003, "msg": "Too many requests."}), True, "429"),
        ((418, {"code": -1003, "msg": "Way too many requests; IP banned."}), True, "418"),
        ((503, "Service Unavailable"), True, "503"),
        ((504, ""), True, "504"),
        (TimeoutError(), True, "RequestTimeout"),
        ((400, {"code": -1121, "msg": "Invalid symbol."}), False, "Invalid symbol"),
        ((400, "Bad Request"), False, "400"),
        ((401, {"code": -2015, "msg": "Invalid API-key."}), False, "401"),
    ],
)
async def test_errors_are_classified_by_what_the_exchange_answered(
    answer: Any, retryable: bool, says: str
) -> None:
    with pytest.raises(FetchError, match=says) as info:
        await _fetch(RecordedSession([answer]), TimeRange(T0, T0 + 10 * MIN))
    assert info.value.retryable is retryable
    assert "BTC/USDT" in info.value.message


async def test_a_retry_after_429_succeeds() -> None:
    session = RecordedSession([(429, {"code": -1003, "msg": "Too many requests."})])
    fetcher = CcxtFetcher(session=session, enableRateLimit=False)
    try:
        with pytest.raises(FetchError):
            await fetcher.fetch(SERIES, TimeRange(T0, T0 + 10 * MIN), DS)
        frame = await fetcher.fetch(SERIES, TimeRange(T0, T0 + 10 * MIN), DS)
    finally:
        await fetcher.aclose()
    assert len(frame) == 10


async def test_unknown_exchange_and_timeframe_are_terminal() -> None:
    fetcher = CcxtFetcher(session=RecordedSession(), enableRateLimit=False)
    try:
        with pytest.raises(FetchError, match="names no ccxt exchange") as info:
            await fetcher.fetch(
                SERIES, TimeRange(T0, T0 + MIN), Dataset("x", "x", "ccxt:nosuchexchange", MIN)
            )
        assert not info.value.retryable
        with pytest.raises(FetchError, match="has no 7m bars") as info:
            await fetcher.fetch(
                SERIES, TimeRange(T0, T0 + 7 * MIN), Dataset("x", "x", "ccxt:binance", 7 * MIN)
            )
        assert not info.value.retryable
    finally:
        await fetcher.aclose()


class _HoleyExchange:
    """A ccxt-style exchange (the upstream itself, faked): 1m bars over [start, end) except a
    hole longer than one page, as exchanges have across maintenance windows."""

    id = "holey"

    def __init__(self, start_ms: int, end_ms: int, hole: tuple[int, int]) -> None:
        self.timeframes = {"1m": "1m"}
        self.features: dict[str, Any] = {}
        self.bars = [
            [t, 1.0, 2.0, 0.5, 1.5, 10.0]
            for t in range(start_ms, end_ms, 60_000)
            if not hole[0] <= t < hole[1]
        ]
        self.calls: list[int] = []

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list[Any]:
        self.calls.append(since)  # the page's window only, as exchanges that page by time do
        return [b for b in self.bars if since <= b[0] < since + limit * 60_000]

    async def close(self) -> None:
        return None


async def test_an_empty_page_inside_the_range_does_not_end_the_chunk() -> None:
    start_ms, end_ms = T0 // 1000, T0 // 1000 + 600 * 60_000
    hole = (start_ms + 100 * 60_000, start_ms + 350 * 60_000)  # 250 bars, pages of 100
    exchange = _HoleyExchange(start_ms, end_ms, hole)
    fetcher = CcxtFetcher(exchange="holey", page_limit=100)
    fetcher._exchanges["holey"] = exchange
    frame = await fetcher.fetch(SERIES, TimeRange(T0, T0 + 600 * MIN), DS)
    expected = [b[0] * 1000 for b in exchange.bars]
    assert len(expected) == 350
    assert frame["ts"].tolist() == expected  # every bar after the hole arrived


async def test_a_range_with_no_bars_at_all_is_paged_to_its_end_before_it_is_empty() -> None:
    start_ms = T0 // 1000
    exchange = _HoleyExchange(start_ms, start_ms, (0, 0))
    fetcher = CcxtFetcher(exchange="holey", page_limit=100)
    fetcher._exchanges["holey"] = exchange
    frame = await fetcher.fetch(SERIES, TimeRange(T0, T0 + 250 * MIN), DS)
    assert frame.empty
    assert exchange.calls == [start_ms + n * 100 * 60_000 for n in range(3)]
