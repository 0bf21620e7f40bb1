"""Columnar reads of bars from QuestDB over HTTP.

A read asks ``/exp`` for Parquet (QuestDB 9 exports it natively) and hands the bytes to pyarrow,
so a million rows never pass through a Python object per value; the CSV export parsed by
``pyarrow.csv`` is the fallback for servers without Parquet export. The symbol is filtered in SQL
and never shipped back: the frame's ``symbol`` column is built locally as a one-category
categorical.

Symbols are data: they are written into the SQL as string literals with every ``'`` doubled,
which is QuestDB's only escape inside a literal, and table names are validated and quoted, so no
symbol can change the query (both by :mod:`seamfill.core._sql`, shared with the sink).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seamfill.core._sql import quote_literal, quote_table
from seamfill.core.errors import InvalidArgument, StorageError, StorageRejected, StorageUnavailable
from seamfill.core.timeconv import us_to_iso
from seamfill.core.types import TimeRange
from seamfill.sdk.quality.conformance import BAR_COLUMNS, PRICE_COLUMNS

TS_DTYPE = "datetime64[us, UTC]"


sql_string = quote_literal
sql_table = quote_table


def bars_query(table: str, symbol: str, rng: TimeRange, columns: Sequence[str] = ()) -> str:
    cols = ", ".join(columns or [c for c in BAR_COLUMNS if c != "symbol"])
    return (
        f"SELECT {cols} FROM {sql_table(table)} WHERE symbol = {sql_string(symbol)} "
        f"AND ts >= '{us_to_iso(rng.start_us)}' AND ts < '{us_to_iso(rng.end_us)}' ORDER BY ts"
    )


def empty_bars(symbol: str = "") -> pd.DataFrame:
    """A zero-row frame with the bar schema."""
    frame = pd.DataFrame(
        {
            "ts": pd.Series([], dtype=TS_DTYPE),
            "symbol": pd.Categorical([], categories=[symbol] if symbol else []),
            **{c: pd.Series([], dtype="float64") for c in PRICE_COLUMNS},
        }
    )
    return frame[list(BAR_COLUMNS)]


def with_symbol(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """``frame`` with a one-category ``symbol`` column, in the bar column order."""
    codes = np.zeros(len(frame), dtype=np.int8)
    frame["symbol"] = pd.Categorical.from_codes(codes, categories=pd.Index([symbol]))
    return frame[[c for c in BAR_COLUMNS if c in frame.columns]]


def coerce_bars(frame: pd.DataFrame, symbol: str, unit: str = "us") -> pd.DataFrame:
    """A fetcher's frame in the bar schema: ``ts`` as datetime64[us, UTC], floats, the symbol.

    Integer ``ts`` columns are epoch times in ``unit`` (``s``, ``ms``, ``us`` or ``ns``; the
    fetcher's contract says which, no unit is guessed from the numbers' size).
    """
    out = frame.copy()
    if "ts" not in out.columns and isinstance(out.index, pd.DatetimeIndex):
        out = out.rename_axis("ts").reset_index()
    if "ts" not in out.columns:
        raise InvalidArgument("fetched frame has no 'ts' column: return bars with a ts column")
    ts = out["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
        out["ts"] = ts.dt.as_unit("us")
    else:
        out["ts"] = pd.to_datetime(ts.astype("int64"), unit=unit, utc=True).dt.as_unit("us")
    for col in PRICE_COLUMNS:
        if col in out.columns:
            out[col] = out[col].astype("float64")
    return with_symbol(out, symbol)


@dataclass(frozen=True, slots=True)
class StorageReader:
    """Reads bars of one QuestDB over HTTP (``/exp`` Parquet, CSV fallback; ``/exec`` for DDL)."""

    url: str = "http://127.0.0.1:9000"
    """QuestDB's HTTP endpoint."""
    timeout_s: float = 30.0
    """Socket timeout of one request; the SLA's storage deadline cuts waits shorter."""
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str, timeout_s: float = 30.0) -> StorageReader:
        """A reader of ``http[s]://[user:password@]host:port`` (credentials go to Basic auth)."""
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise InvalidArgument(
                f"questdb_url {url!r} is not an http(s)://host:port address: give QuestDB's "
                "HTTP endpoint, e.g. http://127.0.0.1:9000"
            )
        host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
        base = f"{u.scheme}://{host}:{u.port or 9000}"
        user = urllib.parse.unquote(u.username) if u.username else None
        password = urllib.parse.unquote(u.password) if u.password else None
        return cls(base, timeout_s, user, password)

    def _request(self, path: str, params: dict[str, str]) -> bytes:
        url = f"{self.url.rstrip('/')}/{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url)
        if self.username is not None:
            import base64

            cred = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            req.add_header("Authorization", f"Basic {cred}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                body: bytes = resp.read()
                return body
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            error = StorageUnavailable if e.code >= 500 else StorageRejected
            raise error(f"QuestDB at {self.url} answered {e.code} to {path}: {detail}") from e
        except (urllib.error.URLError, OSError) as e:
            raise StorageUnavailable(
                f"QuestDB at {self.url} cannot be reached ({e}): check "
                "storage.questdb_url and that QuestDB is running"
            ) from e

    def exec(self, sql: str) -> dict[str, Any]:
        """Run one statement through ``/exec``; raise :class:`StorageError` on an error answer."""
        answer = json.loads(self._request("exec", {"query": sql}))
        if isinstance(answer, dict) and "error" in answer:
            raise StorageRejected(f"QuestDB rejected a query: {answer['error']}")
        return dict(answer)

    def read_bars(self, table: str, symbol: str, rng: TimeRange) -> pd.DataFrame:
        """Rows of ``symbol`` with ``rng.start_us <= ts < rng.end_us``, ordered by ts."""
        if rng.empty:
            return empty_bars(symbol)
        query = bars_query(table, symbol, rng)
        try:
            body = self._request("exp", {"query": query, "fmt": "parquet"})
        except StorageError as e:
            if _table_missing(e):
                return empty_bars(symbol)
            raise
        frame = _parquet_frame(body) if body[:4] == b"PAR1" else _csv_frame(body)
        return with_symbol(frame, symbol)

    def read_bars_csv(self, table: str, symbol: str, rng: TimeRange) -> pd.DataFrame:
        """The CSV path of :meth:`read_bars` (for servers without Parquet export)."""
        body = self._request("exp", {"query": bars_query(table, symbol, rng)})
        return with_symbol(_csv_frame(body), symbol)

    def bar_times(self, table: str, symbol: str, rng: TimeRange) -> np.ndarray[Any, Any]:
        """Just the bar times (int64 us) of ``symbol`` in ``rng``: what coverage is derived from."""
        frame = self.read_bars(table, symbol, rng)
        return np.asarray(frame["ts"].astype("int64"), dtype=np.int64)


def _table_missing(e: StorageError) -> bool:
    text = str(e).lower()
    return "table does not exist" in text or ("does not exist" in text and "table" in text)


def _parquet_frame(body: bytes) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(body))
    frame: pd.DataFrame = table.to_pandas()
    if "ts" in frame.columns and str(frame["ts"].dtype) != TS_DTYPE:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
    return frame


def _csv_frame(body: bytes) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {"ts": pa.timestamp("us", tz="UTC"), **{c: pa.float64() for c in PRICE_COLUMNS}}
    table = pacsv.read_csv(
        io.BytesIO(body),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    frame: pd.DataFrame = table.to_pandas()
    return frame


def covered_runs(ts_us: np.ndarray[Any, Any], interval_us: int) -> list[TimeRange]:
    """Runs of consecutive grid bars in ``ts_us``, each ``[first, last + 1 bar)``.

    What storage alone says is covered when the coordinator cannot be asked.
    """
    if len(ts_us) == 0:
        return []
    from seamfill.sdk.quality.conformance import sorted_unique

    ts = sorted_unique(np.asarray(ts_us, dtype=np.int64))
    breaks = np.nonzero(np.diff(ts) != interval_us)[0]
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(ts) - 1]))
    return [
        TimeRange(int(ts[s]), int(ts[e]) + interval_us) for s, e in zip(starts, ends, strict=True)
    ]
