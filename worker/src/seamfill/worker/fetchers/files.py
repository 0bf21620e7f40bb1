"""The ``files`` fetcher: bars from a directory of monthly kline dumps (CSV, zipped CSV, Parquet).

Layout, as public exchange dumps publish it (options ``root`` and, optionally, ``pattern``)::

    ROOT/BTCUSDT/BTCUSDT-1m-2024-01.csv      (or .csv.zip, or .parquet)

CSV rows are ``open time, open, high, low, close, volume, close time, ...`` with or without a
header line; open times in milliseconds or microseconds (newer dumps) are both read, told apart
by magnitude. Parquet files carry the same columns by name (``open_time`` or ``ts``).

A month whose file is missing fails the chunk terminally, naming the file that was looked for.
A missing file in a dump directory almost always means an incomplete download, and a chunk marked
covered-empty would hide that history from every reader for good; after fetching the file an
operator requeues the dead letter. For dumps known to be complete, where a missing month means
"no trading" (before listing, after delisting), set ``missing=empty`` and such months are
covered-empty. A file that cannot be parsed fails terminally, naming the file and the problem.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seamfill.core.errors import ConfigError, FetchError
from seamfill.core.types import Dataset, Series, TimeRange

__all__ = ["FilesFetcher", "interval_name"]

_EXTENSIONS = (".csv", ".csv.zip", ".zip", ".parquet")
_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]
_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000))
# Epoch milliseconds stay below this until the year 5138; epoch microseconds are above it
# from 1973 on, so the two units in dumps never overlap.
_MS_LIMIT = 100_000_000_000_000


def interval_name(interval_us: int) -> str:
    """The interval as dumps spell it in file names: 60_000_000 → ``1m``."""
    for suffix, size in _UNITS:
        if interval_us % size == 0:
            return f"{interval_us // size}{suffix}"
    raise ConfigError(f"interval {interval_us}us has no dump file name: use whole seconds")


def _months(range: TimeRange) -> list[tuple[int, int]]:
    """(year, month) of every calendar month that ``range`` touches."""
    if range.empty:
        return []
    first = dt.datetime.fromtimestamp(range.start_us / 1e6, dt.UTC)
    last = dt.datetime.fromtimestamp((range.end_us - 1) / 1e6, dt.UTC)
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


class FilesFetcher:
    """Reads bars for a chunk from the month files that cover it.

    ``root``: the dump directory. ``pattern``: the file path under it without extension,
    formatted with ``symbol``, ``interval``, ``year`` and ``month`` (default
    ``{symbol}/{symbol}-{interval}-{year:04d}-{month:02d}``). ``missing``: ``fail`` (default)
    or ``empty`` — what a missing month means (see the module docstring). ``cache``: how many
    parsed months to keep in memory (chunks are smaller than a month, so neighbours reuse one).
    """

    def __init__(
        self,
        *,
        root: str,
        pattern: str = "{symbol}/{symbol}-{interval}-{year:04d}-{month:02d}",
        missing: str = "fail",
        cache: int | str = 4,
    ) -> None:
        if missing not in ("fail", "empty"):
            raise ConfigError(f"files fetcher option missing={missing!r}: use 'fail' or 'empty'")
        self.root = Path(root)
        self.pattern = pattern
        self.missing = missing
        self._cache: OrderedDict[tuple[Path, float], pd.DataFrame] = OrderedDict()
        self._cache_size = int(cache)

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        return await asyncio.to_thread(self.read, series, range, dataset)

    def read(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        """The bars of ``series`` in ``range`` (synchronous; :meth:`fetch` runs it in a thread)."""
        symbol = series.symbol
        if symbol in (".", "..") or any(c in symbol for c in "/\\\x00"):
            raise FetchError(
                f"symbol {symbol!r} cannot name a file under {self.root}: the files "
                "fetcher serves symbols without path separators",
                retryable=False,
            )
        interval = interval_name(dataset.interval_us)
        parts = []
        for year, month in _months(range):
            stem = self.pattern.format(symbol=symbol, interval=interval, year=year, month=month)
            path = self._find(self.root / stem)
            if path is None:
                if self.missing == "empty":
                    continue
                raise FetchError(
                    f"no file for {series} in {year:04d}-{month:02d}: looked for "
                    f"{self.root / stem}{{{','.join(_EXTENSIONS)}}}; download that "
                    "month and requeue, or set the dataset option missing=empty if "
                    "the source had no trading then",
                    retryable=False,
                )
            month_frame = self._load(path, dataset.interval_us)
            ts = month_frame["ts"].to_numpy()
            parts.append(month_frame[(ts >= range.start_us) & (ts < range.end_us)])
        if not parts:
            return pd.DataFrame(
                {c: pd.Series(dtype="int64" if c == "ts" else "float64") for c in _COLUMNS}
            )
        return pd.concat(parts, ignore_index=True)

    @staticmethod
    def _find(stem: Path) -> Path | None:
        for ext in _EXTENSIONS:
            candidate = stem.with_name(stem.name + ext)
            if candidate.is_file():
                return candidate
        return None

    def _load(self, path: Path, interval_us: int) -> pd.DataFrame:
        key = (path, path.stat().st_mtime)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        try:
            frame = _parse(path)
        except FetchError:
            raise
        except Exception as e:  # pandas, zipfile and pyarrow share no base for "bad file"
            raise _corrupt(path, f"{type(e).__name__}: {e}") from e
        off = frame["ts"].to_numpy() % interval_us != 0
        if off.any():
            raise _corrupt(
                path,
                f"{int(off.sum())} row(s) are not on the {interval_us}us grid "
                "(wrong interval in the file name?)",
            )
        self._cache[key] = frame
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return frame


def _corrupt(path: Path, problem: str) -> FetchError:
    return FetchError(
        f"file {path} is corrupt: {problem}; replace it with a good copy and requeue",
        retryable=False,
    )


def _parse(path: Path) -> pd.DataFrame:
    """One month file as ``ts`` (int64 microseconds) plus float OHLCV, sorted by time."""
    if path.suffix == ".parquet":
        raw = pd.read_parquet(path)
        time_col = "open_time" if "open_time" in raw.columns else "ts"
        raw = raw.rename(columns={time_col: "ts"})[_COLUMNS]
    else:
        raw = pd.read_csv(
            path,
            header=None,
            usecols=range(6),
            names=_COLUMNS,
            dtype=str,
            compression="zip" if path.suffix == ".zip" else None,
        )
        if len(raw) and not raw.iloc[0, 0].strip().lstrip("-").isdigit():
            raw = raw.iloc[1:]  # a header line
    out = pd.DataFrame({"ts": _times_us(raw["ts"], path)})
    for name in _COLUMNS[1:]:
        values = pd.to_numeric(raw[name], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(values).any():
            bad = int(np.flatnonzero(np.isnan(values))[0])
            raise _corrupt(path, f"column {name!r} is not a number in data row {bad + 1}")
        out[name] = values
    return out.sort_values("ts", ignore_index=True)


def _times_us(col: Any, path: Path) -> np.ndarray[Any, np.dtype[np.int64]]:
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return np.asarray(col.to_numpy(dtype="datetime64[us]").astype(np.int64))
    nums = pd.to_numeric(col, errors="coerce")
    if nums.isna().any():
        bad = int(np.flatnonzero(nums.isna().to_numpy())[0])
        raise _corrupt(path, f"open time is not an integer in data row {bad + 1}")
    ints = nums.to_numpy(dtype=np.int64)
    out: np.ndarray[Any, np.dtype[np.int64]] = np.where(ints < _MS_LIMIT, ints * 1000, ints)
    return out
