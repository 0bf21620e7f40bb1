"""The baseline every throughput figure is compared to: one raw ``Sender.dataframe`` writer.

It writes bars for N symbols x D days of 1-minute data into a fresh WAL table with DEDUP UPSERT
KEYS (the same shape the workers write), then waits until every row is visible to queries, so it
is measured on the same terms as the backfill pipeline.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

import numpy as np
import pandas as pd

QUESTDB_URL = os.environ.get("SEAMFILL_QUESTDB_URL", "http://127.0.0.1:9000")
MINUTE_US = 60_000_000
T0_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def sql(query: str) -> dict[str, Any]:
    url = f"{QUESTDB_URL}/exec?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=60) as resp:
        out: dict[str, Any] = json.load(resp)
    return out


def bars_frame(symbol: str, start_us: int, n: int) -> pd.DataFrame:
    """n deterministic 1-minute bars (cheap to make, so generation is not what is measured)."""
    rng = np.random.default_rng(abs(hash(symbol)) % (2**32))
    close = 100 + np.cumsum(rng.normal(0, 0.1, n))
    spread = np.abs(rng.normal(0, 0.05, n))
    ts = pd.to_datetime(start_us + np.arange(n, dtype=np.int64) * MINUTE_US, unit="us", utc=True)
    return pd.DataFrame(
        {
            "ts": ts,
            "symbol": pd.Categorical([symbol] * n),
            "open": close,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": np.abs(rng.normal(10, 2, n)),
        }
    )


def create_bars_table(table: str) -> None:
    sql(
        f'CREATE TABLE IF NOT EXISTS "{table}" (ts TIMESTAMP, symbol SYMBOL, open DOUBLE, '
        "high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE) TIMESTAMP(ts) PARTITION BY DAY "
        "WAL DEDUP UPSERT KEYS(ts, symbol)"
    )


def wait_rows(table: str, expected: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = sql(f'SELECT count() FROM "{table}"')["dataset"][0][0]
        if got >= expected:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{table}: fewer than {expected} rows visible after {timeout_s}s")


def raw_writer(symbols: int = 10, days: int = 30, rows_per_flush: int = 1440) -> dict[str, Any]:
    """rows/s of one Sender writing symbols x days of bars, flushed every rows_per_flush rows."""
    from questdb.ingress import Sender

    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    create_bars_table(table)
    n = days * 1440
    frames = [bars_frame(f"SYM{i}", T0_US, n) for i in range(symbols)]
    total = symbols * n
    host = urllib.parse.urlparse(QUESTDB_URL)
    conf = f"http::addr={host.hostname}:{host.port or 9000};auto_flush=off;"
    t0 = time.perf_counter()
    with Sender.from_conf(conf) as sender:
        for df in frames:
            for lo in range(0, n, rows_per_flush):
                sender.dataframe(
                    df.iloc[lo : lo + rows_per_flush], table_name=table, symbols=["symbol"], at="ts"
                )
                sender.flush()
    acked = time.perf_counter() - t0
    wait_rows(table, total)
    visible = time.perf_counter() - t0
    sql(f'DROP TABLE "{table}"')
    return {
        "rows": total,
        "rows_per_flush": rows_per_flush,
        "acked_rows_per_s": round(total / acked),
        "visible_rows_per_s": round(total / visible),
    }


def run() -> dict[str, Any]:
    return {"raw_sender_dataframe": raw_writer()}
