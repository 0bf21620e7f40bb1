"""The readers the SDK read bench compares, each run in a fresh (spawned) process.

A reader returns its time, the rows it read, the bytes of what it returned and its peak RSS
above the process's RSS just before the read (the read's own memory, imports excluded).
"""

from __future__ import annotations

import resource
import time
from typing import Any

MINUTE_US = 60_000_000
T0_US = 946_684_800_000_000  # 2000-01-01: 10M minutes later is still the past
SYMBOL = "BTC-USDT"


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _reset_peak() -> None:
    """Start the peak-RSS mark afresh (Linux: ``5`` to clear_refs resets VmHWM), so imports and
    warm-up before the read do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _query(table: str, rows: int, start: int = 0) -> str:
    from seamfill.core.timeconv import us_to_iso

    a, b = T0_US + start * MINUTE_US, T0_US + (start + rows) * MINUTE_US
    return (
        f'SELECT ts, symbol, open, high, low, close, volume FROM "{table}" '
        f"WHERE symbol = '{SYMBOL}' AND ts >= '{us_to_iso(a)}' AND ts < '{us_to_iso(b)}' "
        "ORDER BY ts"
    )


def _settings(cfg: dict[str, Any], table: str) -> Any:
    from seamfill.sdk import SeamlessSettings

    return SeamlessSettings(
        questdb_url=cfg["url"],
        questdb_dsn=cfg["dsn"],
        table=table,
        dataset=table,
        strategy="fail_fast",
        cache_bytes=0,
        sla={"storage_deadline_ms": 600_000, "total_deadline_ms": 900_000},
    )


class Reader:
    """One kind of reader, set up (imports, connections) before the clock starts."""

    def __init__(self, kind: str, cfg: dict[str, Any], table: str) -> None:
        self.kind, self.cfg, self.table = kind, cfg, table
        self.provider: Any = None
        if kind.startswith("sdk"):
            from seamfill.sdk import SeamlessProvider

            self.provider = SeamlessProvider(_settings(cfg, table))
        elif kind == "connectorx":
            import connectorx  # noqa: F401
        elif kind == "exp_parquet":
            import httpx
            import pyarrow.parquet  # noqa: F401

            self.http = httpx.Client(timeout=600)
        elif kind == "psycopg":
            import pandas  # noqa: F401
            import psycopg  # noqa: F401

    def read(self, rows: int, start: int = 0) -> tuple[Any, int, int]:
        """(result, rows, bytes of the result)."""
        a, b = T0_US + start * MINUTE_US, T0_US + (start + rows) * MINUTE_US
        if self.kind in ("sdk", "sdk_arrow"):
            output = "arrow" if self.kind == "sdk_arrow" else "pandas"
            out = self.provider.fetch(a, b, node_id=SYMBOL, output=output)
            if output == "arrow":
                return out, out.num_rows, out.nbytes
            return out, len(out), int(out.memory_usage(deep=True).sum())
        if self.kind == "connectorx":
            import connectorx as cx

            t = cx.read_sql(
                self.cfg["dsn"],
                _query(self.table, rows, start),
                return_type="arrow",
                protocol="cursor",
            )
            return t, t.num_rows, t.nbytes
        if self.kind == "exp_parquet":
            import io

            import pyarrow.parquet as pq

            resp = self.http.get(
                f"{self.cfg['url']}/exp",
                params={"query": _query(self.table, rows, start), "fmt": "parquet"},
            )
            resp.raise_for_status()
            t = pq.read_table(io.BytesIO(resp.content))
            return t, t.num_rows, t.nbytes
        return self._psycopg(rows, start)

    def _psycopg(self, rows: int, start: int) -> tuple[Any, int, int]:
        import pandas as pd
        import psycopg

        from seamfill.core.timeconv import us_to_iso

        a, b = T0_US + start * MINUTE_US, T0_US + (start + rows) * MINUTE_US
        with psycopg.connect(self.cfg["dsn"], autocommit=True) as conn:
            cur = conn.cursor(binary=True)
            cur.execute(
                f'SELECT ts, symbol, open, high, low, close, volume FROM "{self.table}" '
                "WHERE symbol = %s AND ts >= %s AND ts < %s ORDER BY ts",
                (SYMBOL, pd.Timestamp(us_to_iso(a)), pd.Timestamp(us_to_iso(b))),
            )
            frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description or ()])
        return frame, len(frame), int(frame.memory_usage(deep=True).sum())

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()


def one_read(kind: str, cfg: dict[str, Any], table: str, rows: int) -> dict[str, Any]:
    """One timed read of ``rows`` bars in this (fresh) process, with its peak RSS."""
    reader = Reader(kind, cfg, table)
    reader.read(1000)  # connections and the query plan warm; not measured
    before = _rss()
    _reset_peak()
    t0 = time.perf_counter()
    out, n, nbytes = reader.read(rows)
    elapsed = time.perf_counter() - t0
    peak = _peak() - before
    del out
    reader.close()
    return {"s": elapsed, "rows": n, "bytes": nbytes, "peak_over_start": peak}


def batches_read(cfg: dict[str, Any], table: str, rows: int, batch_rows: int) -> dict[str, Any]:
    """All of ``rows`` bars through ``iter_batches`` (Arrow), with the peak RSS."""
    reader = Reader("sdk", cfg, table)
    reader.read(1000)
    before = _rss()
    _reset_peak()
    t0 = time.perf_counter()
    n, biggest = 0, 0
    a, b = T0_US, T0_US + rows * MINUTE_US
    for batch in reader.provider.iter_batches(a, b, node_id=SYMBOL, batch_rows=batch_rows):
        n += batch.num_rows
        biggest = max(biggest, batch.nbytes)
    elapsed = time.perf_counter() - t0
    peak = _peak() - before
    reader.close()
    return {"s": elapsed, "rows": n, "batch_bytes": biggest, "peak_over_start": peak}


def warm() -> int:
    import os

    import connectorx  # noqa: F401
    import psycopg  # noqa: F401

    import seamfill.sdk.provider  # noqa: F401

    return os.getpid()


def timed_reads(
    kind: str, cfg: dict[str, Any], table: str, rows: int, reads: int, start_at: float
) -> dict[str, Any]:
    """``reads`` reads of ``rows`` bars, starting together with the other readers at
    ``start_at`` (wall clock); errors are counted, not raised."""
    reader = Reader(kind, cfg, table)
    reader.read(rows)
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    n, errors = 0, 0
    for i in range(reads):
        try:
            n += reader.read(rows, start=(i % 50) * rows)[1]
        except Exception:
            errors += 1
    elapsed = time.perf_counter() - t0
    reader.close()
    return {"s": elapsed, "rows": n, "errors": errors}
