"""SDK read of a fully covered 1M-row range against a hand-written psycopg query into pandas.

Both read the same rows of the same table in the same run; the figure is the ratio of the
medians (psycopg time / SDK time; the target is >= 2.0). The SDK read is the whole provider read
(coverage, columnar storage read, conformance, fingerprint) with its cache disabled, so every
repetition goes to QuestDB. The rows are loaded once with ``Sender.dataframe``.
"""

from __future__ import annotations

import os
import statistics
import time
import urllib.parse
import uuid
from typing import Any

import pandas as pd

from tests.bench.baseline import T0_US, bars_frame, create_bars_table, sql, wait_rows

QUESTDB_URL = os.environ.get("SEAMFILL_QUESTDB_URL", "http://127.0.0.1:9000")
QUESTDB_DSN = os.environ.get("SEAMFILL_QUESTDB_DSN", "postgresql://admin:quest@127.0.0.1:8812/qdb")
ROWS = 1_000_000
MINUTE_US = 60_000_000
SYMBOL = "BTC-USDT"


def _load(table: str) -> None:
    from questdb import Sender

    create_bars_table(table)
    host = urllib.parse.urlparse(QUESTDB_URL)
    with Sender.from_conf(f"http::addr={host.hostname}:{host.port or 9000};") as sender:
        sender.dataframe(
            bars_frame(SYMBOL, T0_US, ROWS), table_name=table, symbols=["symbol"], at="ts"
        )
    wait_rows(table, ROWS)


def _psycopg(table: str) -> tuple[float, int]:
    import psycopg

    start = pd.Timestamp(T0_US, unit="us", tz="UTC").to_pydatetime()
    end = pd.Timestamp(T0_US + ROWS * MINUTE_US, unit="us", tz="UTC").to_pydatetime()
    t0 = time.perf_counter()
    with psycopg.connect(QUESTDB_DSN, autocommit=True) as conn:
        cur = conn.cursor(binary=True)
        cur.execute(
            f'SELECT ts, symbol, open, high, low, close, volume FROM "{table}" '
            "WHERE symbol = %s AND ts >= %s AND ts < %s ORDER BY ts",
            (SYMBOL, start, end),
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or ()])
    return time.perf_counter() - t0, len(frame)


def _sdk(provider: Any) -> tuple[float, int]:
    t0 = time.perf_counter()
    frame = provider.fetch(T0_US, T0_US + ROWS * MINUTE_US, node_id=SYMBOL, interval="1m")
    elapsed = time.perf_counter() - t0
    assert frame.attrs["seamless"].complete
    return elapsed, len(frame)


def run(repeat: int = 5) -> dict[str, Any]:
    from seamfill.sdk import SeamlessProvider, SeamlessSettings

    table = f"sdkbench_{uuid.uuid4().hex[:8]}"
    _load(table)
    settings = SeamlessSettings(
        questdb_url=QUESTDB_URL, table=table, dataset=table, strategy="fail_fast", cache_bytes=0
    )
    sdk_s: list[float] = []
    pg_s: list[float] = []
    try:
        with SeamlessProvider(settings) as provider:
            _sdk(provider)  # warm both paths once: the first query plans and pages in the table
            _psycopg(table)
            for _ in range(repeat):
                elapsed, n = _sdk(provider)
                assert n == ROWS, n
                sdk_s.append(elapsed)
                elapsed, n = _psycopg(table)
                assert n == ROWS, n
                pg_s.append(elapsed)
    finally:
        sql(f'DROP TABLE IF EXISTS "{table}"')
    sdk, pg = statistics.median(sdk_s), statistics.median(pg_s)
    return {
        "rows": ROWS,
        "sdk_read_s": round(sdk, 3),
        "psycopg_read_s": round(pg, 3),
        "speedup": round(pg / sdk, 2),
        "target_speedup": 2.0,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
