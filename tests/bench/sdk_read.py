"""SDK reads against the readers a user could pick instead, in the same run (DESIGN §8).

One table of 10M covered 1-minute bars, loaded once with ``Sender.dataframe``. Figures:

- ``single``: at 1M and 10M rows, each reader in a fresh process, rounds alternating: the SDK's
  ``fetch`` (pandas, and ``output="arrow"``), ``/exp`` Parquet into pyarrow, connectorx into
  Arrow, and (at 1M only: it builds a Python object per value) psycopg binary into pandas.
  ``sdk_vs_fastest`` is the fastest floor's median time ÷ the SDK's (goal >= 0.9);
  ``rss_over_frame`` is the read's peak RSS above its start ÷ the frame's bytes (goal <= 1.5).
- ``batches``: ``iter_batches`` over the 10M rows, 100k bars a piece: peak RSS ÷ one piece.
- ``paths``: one reader, HTTP ``/exp`` Parquet vs PGWire binary at 1k-1M rows (the crossover
  behind ``pgwire_max_rows``).
- ``concurrency``: 1-16 readers in separate processes, each 20 reads of 10k bars, started
  together: aggregate rows/s of the SDK ÷ psycopg binary at the same concurrency, and errors.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import statistics
import time
import urllib.parse
import uuid
from typing import Any

from tests.bench._sdk_readers import SYMBOL, T0_US
from tests.bench.baseline import bars_frame, create_bars_table, sql, wait_rows

QUESTDB_URL = os.environ.get("SEAMFILL_QUESTDB_URL", "http://127.0.0.1:9000")
QUESTDB_DSN = os.environ.get("SEAMFILL_QUESTDB_DSN", "postgresql://admin:quest@127.0.0.1:8812/qdb")
ROWS = 10_000_000
SIZES = (1_000_000, 10_000_000)
FLOORS = {
    1_000_000: ("exp_parquet", "connectorx", "psycopg"),
    10_000_000: ("exp_parquet", "connectorx"),
}
LEVELS = (1, 2, 4, 8, 16)
ROUNDS = int(os.environ.get("SEAMFILL_BENCH_ROUNDS", "2"))
CTX = multiprocessing.get_context("spawn")


def _load(table: str) -> None:
    from questdb import Sender

    create_bars_table(table)
    host = urllib.parse.urlparse(QUESTDB_URL)
    step = 1_000_000
    with Sender.from_conf(f"http::addr={host.hostname}:{host.port or 9000};") as sender:
        for i in range(0, ROWS, step):
            frame = bars_frame(SYMBOL, T0_US + i * 60_000_000, step)
            sender.dataframe(frame, table_name=table, symbols=["symbol"], at="ts")
            sender.flush()
    wait_rows(table, ROWS, timeout_s=600)


def _fresh(fn: Any, *args: Any) -> dict[str, Any]:
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=CTX) as pool:
        out: dict[str, Any] = pool.submit(fn, *args).result(timeout=1800)
        return out


def _single(cfg: dict[str, Any], table: str) -> dict[str, Any]:
    from tests.bench._sdk_readers import one_read

    out: dict[str, Any] = {}
    for rows in SIZES:
        kinds = ("sdk", "sdk_arrow", *FLOORS[rows])
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        for r in range(ROUNDS):
            for kind in kinds if r % 2 == 0 else tuple(reversed(kinds)):
                got = _fresh(one_read, kind, cfg, table, rows)
                assert got["rows"] == rows, (kind, got)
                runs[kind].append(got)
        med = {k: statistics.median(x["s"] for x in v) for k, v in runs.items()}
        fastest = min(FLOORS[rows], key=lambda k: med[k])
        rss = {
            k: round(statistics.median(x["peak_over_start"] / x["bytes"] for x in v), 2)
            for k, v in runs.items()
        }
        out[str(rows)] = {
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "rows_per_s": {k: round(rows / v) for k, v in med.items()},
            "fastest_floor": fastest,
            "sdk_vs_fastest": round(med[fastest] / med["sdk"], 2),
            "sdk_arrow_vs_fastest": round(med[fastest] / med["sdk_arrow"], 2),
            "rss_over_frame": rss,
            "frame_bytes": {k: v[0]["bytes"] for k, v in runs.items()},
        }
    return out


def _batches(cfg: dict[str, Any], table: str) -> dict[str, Any]:
    from tests.bench._sdk_readers import batches_read

    got = _fresh(batches_read, cfg, table, ROWS, 100_000)
    assert got["rows"] == ROWS, got
    return {
        "rows": ROWS,
        "batch_rows": 100_000,
        "s": round(got["s"], 2),
        "batch_bytes": got["batch_bytes"],
        "peak_rss_over_batch": round(got["peak_over_start"] / got["batch_bytes"], 2),
    }


def _paths(cfg: dict[str, Any], table: str) -> dict[str, Any]:
    """HTTP ``/exp`` Parquet vs PGWire (binary) for one reader, by size: where PGWire stops
    being the faster path is the default of ``pgwire_max_rows``."""
    from seamfill.core.types import TimeRange
    from seamfill.sdk.read._export import BarExporter, ExportPolicy

    ex = BarExporter(cfg["url"], ExportPolicy(pgwire_dsn=cfg["dsn"]))
    out: dict[str, Any] = {}
    try:
        for rows in (1_000, 10_000, 100_000, 300_000, 1_000_000):
            rng = TimeRange(T0_US, T0_US + rows * 60_000_000)
            times: dict[str, list[float]] = {"http": [], "pgwire": []}
            for r in range(3):
                for path in ("http", "pgwire") if r % 2 == 0 else ("pgwire", "http"):
                    t0 = time.perf_counter()
                    if path == "http":
                        ex._http(table, SYMBOL, rng, None, True)
                    else:
                        ex._pg(table, SYMBOL, rng, None)
                    times[path].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            out[str(rows)] = {
                "http_s": round(med["http"], 4),
                "pgwire_s": round(med["pgwire"], 4),
                "pgwire_vs_http": round(med["http"] / med["pgwire"], 2),
            }
    finally:
        ex.close()
    return out


def _concurrency(cfg: dict[str, Any], table: str) -> dict[str, Any]:
    from tests.bench._sdk_readers import timed_reads, warm

    rows, reads = 10_000, 20
    out: dict[str, Any] = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(LEVELS), mp_context=CTX) as pool:
        for f in [pool.submit(warm) for _ in range(max(LEVELS))]:
            f.result(timeout=600)
        for n in LEVELS:
            level: dict[str, Any] = {}
            for kind in ("sdk", "psycopg") if n % 2 else ("psycopg", "sdk"):
                start_at = time.time() + 3.0 + 0.2 * n
                futures = [
                    pool.submit(timed_reads, kind, cfg, table, rows, reads, start_at)
                    for _ in range(n)
                ]
                got = [f.result(timeout=1800) for f in futures]
                wall = max(g["s"] for g in got)
                level[kind] = {
                    "rows_per_s": round(sum(g["rows"] for g in got) / wall),
                    "errors": sum(g["errors"] for g in got),
                }
            level["sdk_vs_psycopg"] = round(
                level["sdk"]["rows_per_s"] / level["psycopg"]["rows_per_s"], 2
            )
            out[str(n)] = level
    return out


def run() -> dict[str, Any]:
    table = f"sdkbench_{uuid.uuid4().hex[:8]}"
    cfg = {"url": QUESTDB_URL, "dsn": QUESTDB_DSN}
    phases = os.environ.get("SEAMFILL_BENCH_SDK_PHASES", "paths,concurrency,single,batches").split(
        ","
    )
    started = time.perf_counter()
    _load(table)
    out: dict[str, Any] = {"rows": ROWS, "load_s": round(time.perf_counter() - started, 1)}
    try:
        for phase in phases:
            fn = {
                "paths": _paths,
                "concurrency": _concurrency,
                "single": _single,
                "batches": _batches,
            }[phase]
            out[phase] = fn(cfg, table)
    finally:
        sql(f'DROP TABLE IF EXISTS "{table}"')
    out["targets"] = {"sdk_vs_fastest": 0.9, "rss_over_frame": 1.5, "sdk_vs_psycopg": 1.0}
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
