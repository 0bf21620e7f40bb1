"""Fetcher plugins: where a chunk's rows come from.

A fetcher turns ``(series, range, dataset)`` into a :class:`pandas.DataFrame` of the rows the
upstream source has in ``[range.start_us, range.end_us)``. The frame's columns are those of the
dataset's kind (see :data:`COLUMNS`) without ``symbol`` — the sink adds the series' symbol. The
``ts`` column holds the bar's open time, as ``datetime64`` (UTC) or int64 microseconds. An empty
frame means the source has nothing there (market closed, not yet listed): the chunk is then
covered-empty.

Errors: raise :class:`~seamfill.core.errors.FetchError` with ``retryable=True`` when asking again
later may help (rate limited, 5xx, timeout) and ``retryable=False`` when it will not (bad symbol,
corrupt file); the message is what an operator reads in the dead-letter list, so say what to fix.

Fetchers are discovered through the ``seamfill.fetchers`` entry-point group. Writing one::

    # mypkg/fetchers.py
    import pandas as pd
    from seamfill.core.errors import FetchError

    class MyFetcher:
        def __init__(self, *, api_url: str = "https://example.invalid") -> None:
            self.api_url = api_url

        async def fetch(self, series, range, dataset):
            rows = await my_download(self.api_url, series.symbol, range.start_us, range.end_us)
            if rows is None:
                raise FetchError(f"{series.symbol!r} is unknown upstream", retryable=False)
            return pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])

    # pyproject.toml
    [project.entry-points."seamfill.fetchers"]
    mysource = "mypkg.fetchers:MyFetcher"

A dataset whose ``source`` is ``mysource`` (or ``mysource:anything``) is then served by
``MyFetcher(**dataset_options)``.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from seamfill.core.errors import ConfigError
from seamfill.core.types import Dataset, Series, TimeRange

__all__ = [
    "COLUMNS",
    "ENTRY_POINT_GROUP",
    "Fetcher",
    "SyntheticFetcher",
    "available_fetchers",
    "load_fetcher",
    "source_name",
]

ENTRY_POINT_GROUP = "seamfill.fetchers"

COLUMNS: dict[str, tuple[str, ...]] = {
    "bars": ("ts", "open", "high", "low", "close", "volume"),
    "trades": ("ts", "trade_id", "price", "amount", "side"),
}
"""Columns a fetcher returns for each dataset kind (``symbol`` is added by the sink)."""


@runtime_checkable
class Fetcher(Protocol):
    """The one method a fetcher plugin implements; see the module docstring for the contract."""

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        """Rows of ``series`` in ``range`` (half-open), columns as :data:`COLUMNS` says."""
        ...


def source_name(source: str) -> str:
    """The plugin name of a dataset source: ``ccxt:binance`` → ``ccxt``."""
    return source.partition(":")[0]


def available_fetchers() -> list[str]:
    """Names of every installed fetcher plugin."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_fetcher(name: str, **options: Any) -> Fetcher:
    """Instantiate the fetcher plugin ``name`` (a source like ``ccxt:binance`` works too).

    ``options`` are passed to the plugin's constructor. Raises :class:`ConfigError` when no such
    plugin is installed or the options do not fit it.
    """
    plugin = source_name(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == plugin:
            factory = ep.load()
            try:
                fetcher = factory(**options)
            except TypeError as e:
                raise ConfigError(
                    f"fetcher {plugin!r} rejected its options {sorted(options)}: {e}"
                ) from e
            if not isinstance(fetcher, Fetcher):
                raise ConfigError(
                    f"fetcher plugin {plugin!r} ({ep.value}) has no async "
                    "fetch(series, range, dataset) method"
                )
            return fetcher
    raise ConfigError(
        f"no fetcher plugin named {plugin!r} is installed (have: "
        f"{', '.join(available_fetchers()) or 'none'}); install the package that "
        f"provides it or fix the dataset's source"
    )


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray[Any, np.dtype[np.uint64]]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """A strong 64-bit mixer (SplitMix64's finaliser), vectorised; wraps modulo 2**64."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK64


def _stable_seed(*parts: str) -> int:
    """A seed that is the same in every process and Python version (unlike ``hash``)."""
    digest = hashlib.blake2b("\x00".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class SyntheticFetcher:
    """Deterministic OHLCV bars (or trades) for demos, tests and benchmarks.

    Each bar is a pure function of ``(seed, dataset, symbol, bar time)``, so any sub-range of a
    range yields exactly the rows the whole range has there, in any process. Rows lie on the
    dataset's bar grid with ``ts`` in ``[start, end)``; prices move smoothly around a per-symbol
    level, and ``low <= open, close <= high`` always holds. ``gap_every`` (options) leaves out
    every N-th bar, for tests of sources with holes.
    """

    def __init__(self, *, seed: int | str = 0, gap_every: int | str = 0) -> None:
        self.seed = int(seed)
        self.gap_every = int(gap_every)

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        return self.frame(series, range, dataset)

    def frame(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        """The rows, computed synchronously (the async :meth:`fetch` returns the same)."""
        step = dataset.interval_us
        first = -(-range.start_us // step)  # the first grid index at or after the start
        last = -(-range.end_us // step)
        idx = np.arange(first, last, dtype=np.int64)
        if self.gap_every > 0:
            idx = idx[idx % self.gap_every != 0]
        base = _stable_seed(str(self.seed), dataset.name, series.symbol)
        if dataset.kind == "trades":
            return self._trades(idx, step, base)
        return self._bars(idx, step, base)

    @staticmethod
    def _uniforms(idx: np.ndarray[Any, Any], base: int, k: int) -> np.ndarray[Any, Any]:
        """``k`` independent uniforms in [0, 1) per bar index."""
        keys = _splitmix64(idx.astype(np.uint64) ^ np.uint64(base))
        out = np.empty((k, idx.size), dtype=np.float64)
        for i in range(k):
            keys = _splitmix64(keys + np.uint64(i + 1))
            out[i] = (keys >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
        return out

    def _bars(self, idx: np.ndarray[Any, Any], step: int, base: int) -> pd.DataFrame:
        level = 10.0 + (base % 100_000) / 10.0
        phase = (base >> 20) % 1000 / 1000.0 * 2 * np.pi

        # The level at every bar boundary (open of bar i, close of bar i - 1), computed once.
        edges = np.append(idx, idx[-1] + 1 if idx.size else 0).astype(np.float64)
        level_at = level * np.exp(
            0.05 * np.sin(edges / 1440.0 + phase) + 0.01 * np.sin(edges / 97.0)
        )
        if self.gap_every > 0:  # idx has holes: the next boundary is not the next element
            t = (idx + 1).astype(np.float64)
            after = level * np.exp(0.05 * np.sin(t / 1440.0 + phase) + 0.01 * np.sin(t / 97.0))
        else:
            after = level_at[1:]
        u = self._uniforms(idx, base, 4)
        open_ = level_at[:-1] * (1.0 + (u[0] - 0.5) * 0.002)
        close = after * (1.0 + (u[1] - 0.5) * 0.002)
        high = np.maximum(open_, close) * (1.0 + u[2] * 0.001)
        low = np.minimum(open_, close) * (1.0 - u[2] * 0.001)
        volume = np.round(1.0 + u[3] * 100.0, 4)
        return pd.DataFrame(
            {
                "ts": (idx * step).astype("datetime64[us]"),
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
        )

    def _trades(self, idx: np.ndarray[Any, Any], step: int, base: int) -> pd.DataFrame:
        u = self._uniforms(idx, base, 3)
        level = 10.0 + (base % 100_000) / 10.0
        return pd.DataFrame(
            {
                "ts": (idx * step).astype("datetime64[us]"),
                "trade_id": pd.array(idx.astype(str), dtype="string"),
                "price": level * (1.0 + (u[0] - 0.5) * 0.01),
                "amount": np.round(0.01 + u[1] * 5.0, 6),
                "side": pd.Categorical.from_codes((u[2] < 0.5).astype(np.int8), ["buy", "sell"]),
            }
        )
