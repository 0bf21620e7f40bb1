"""Helpers for the SDK provider's tests: unique QuestDB tables, rows inserted with SQL, waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from seamfill.core.timeconv import us_to_iso
from seamfill.sdk.read.storage import StorageReader, sql_string

MIN = 60_000_000
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z, on every bar grid

BARS_DDL = (
    'CREATE TABLE IF NOT EXISTS "{t}" (ts TIMESTAMP, symbol SYMBOL, open DOUBLE, high DOUBLE, '
    "low DOUBLE, close DOUBLE, volume DOUBLE) TIMESTAMP(ts) PARTITION BY DAY WAL "
    "DEDUP UPSERT KEYS(ts, symbol)"
)


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def create_bars_table(url: str, table: str) -> None:
    StorageReader(url).exec(BARS_DDL.format(t=table))


def drop_table(url: str, table: str) -> None:
    StorageReader(url).exec(f'DROP TABLE IF EXISTS "{table}"')


def count(url: str, table: str, symbol: str) -> int:
    body = StorageReader(url).exec(
        f'SELECT count() FROM "{table}" WHERE symbol = {sql_string(symbol)}'
    )
    return int(body["dataset"][0][0])


def insert_bars(
    url: str,
    table: str,
    symbol: str,
    ts_us: Iterable[int],
    price: float = 10.0,
    *,
    wait: bool = True,
) -> int:
    """Insert one bar per timestamp with SQL and (with ``wait``) wait until they are visible."""
    reader = StorageReader(url)
    stamps = list(ts_us)
    before = count(url, table, symbol)
    for i in range(0, len(stamps), 500):
        values = ", ".join(
            f"('{us_to_iso(t)}', {sql_string(symbol)}, {price}, {price + 1}, {price - 1}, "
            f"{price + 0.5}, 1.0)"
            for t in stamps[i : i + 500]
        )
        reader.exec(f'INSERT INTO "{table}" VALUES {values}')
    if wait:
        wait_for(lambda: count(url, table, symbol) >= before + len(stamps), what="rows visible")
    return len(stamps)


def grid(start: int, n: int, step: int = MIN) -> list[int]:
    return [start + i * step for i in range(n)]


def bars_frame(ts_us: Iterable[int], price: float = 10.0) -> pd.DataFrame:
    ts = np.asarray(list(ts_us), dtype=np.int64)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, unit="us", utc=True),
            "open": price,
            "high": price + 1,
            "low": price - 1,
            "close": price + 0.5,
            "volume": 1.0,
        }
    )
