"""Floors: the physical limits every bench figure is stated against, measured in the same run.

- ``raw_ingest``: the best raw ``Sender.dataframe`` ingest of the bar shape (WAL + DEDUP table,
  until every row is visible), searched over 1/2/4 writers x 10k/100k rows per flush;
- ``noop_unary_pair``: two no-op grpc.aio unary RPCs (what an Acquire + Complete cycle costs at
  the very least over gRPC), ``noop_stream_pair``: two request/reply turns on one no-op bidi
  stream, ``noop_unary_p99_ms``: p99 latency of one no-op RPC;
- ``evalsha_pair``: two bare EVALSHA of a trivial script against a private ``redis-server``,
  with Redis CPU per call from INFO commandstats.

Floors are measured in alternating rounds (>= 3), each figure reported as median and range, with
``os.getloadavg()`` before and after. Other modules call :func:`measure` (cached per process) and
:func:`ratio`. Sizes: ``SEAMFILL_BENCH_FLOOR_ROWS`` (default 432,000), ``..._ROUNDS`` (3).
Usage: ``python -m tests.bench floors``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
import urllib.parse
import uuid
from typing import Any

import grpc
import redis

from tests.bench import baseline
from tests.bench.coordinator import _pct, _private_redis

ROWS = int(os.environ.get("SEAMFILL_BENCH_FLOOR_ROWS", "432000"))
ROUNDS = max(3, int(os.environ.get("SEAMFILL_BENCH_FLOOR_ROUNDS", "3")))
CLIENTS = int(os.environ.get("SEAMFILL_BENCH_FLOOR_CLIENTS", "16"))
RPC_SECONDS = float(os.environ.get("SEAMFILL_BENCH_FLOOR_RPC_SECONDS", "2"))
WRITERS = (1, 2, 4)
FLUSH_ROWS = (10_000, 100_000)
BARS_PER_SYMBOL = 43_200  # 30 days of minutes
_SERVICE = "seamfill.bench.Noop"
_cache: dict[str, Any] | None = None


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def _raw_once(writers: int, rows_per_flush: int) -> float:
    """Visible rows/s of ``writers`` threads, each with its own Sender and symbols."""
    from questdb.ingress import Sender

    table = f"bench_floor_{uuid.uuid4().hex[:8]}"
    baseline.create_bars_table(table)
    symbols = max(writers, ROWS // BARS_PER_SYMBOL)
    n = ROWS // symbols
    frames = [baseline.bars_frame(f"SYM{i}", baseline.T0_US, n) for i in range(symbols)]
    host = urllib.parse.urlparse(baseline.QUESTDB_URL)
    conf = f"http::addr={host.hostname}:{host.port or 9000};auto_flush=off;"
    errors: list[BaseException] = []

    def write(mine: list[Any]) -> None:
        try:
            with Sender.from_conf(conf) as sender:
                for df in mine:
                    for lo in range(0, n, rows_per_flush):
                        sender.dataframe(
                            df.iloc[lo : lo + rows_per_flush],
                            table_name=table,
                            symbols=["symbol"],
                            at="ts",
                        )
                        sender.flush()
        except BaseException as e:  # reported after join
            errors.append(e)

    threads = [threading.Thread(target=write, args=(frames[w::writers],)) for w in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    baseline.wait_rows(table, symbols * n)
    elapsed = time.perf_counter() - t0
    baseline.sql(f'DROP TABLE "{table}"')
    return symbols * n / elapsed


def _identity(b: bytes) -> bytes:
    return b


async def _noop_unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b""


async def _noop_stream(requests: Any, context: grpc.aio.ServicerContext) -> Any:
    async for _ in requests:
        yield b""


async def _grpc_once() -> dict[str, float]:
    """One round of the no-op floors: unary pairs/s, stream pairs/s, unary p99 (ms)."""
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        _SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_noop_unary, _identity, _identity),
            "Stream": grpc.stream_stream_rpc_method_handler(_noop_stream, _identity, _identity),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        unary, p99 = await _unary_load(f"127.0.0.1:{port}")
        stream = await _stream_load(f"127.0.0.1:{port}")
    finally:
        await server.stop(None)
    return {"unary_pairs_per_s": unary, "stream_pairs_per_s": stream, "unary_p99_ms": p99}


async def _unary_load(address: str) -> tuple[float, float]:
    counts = [0] * CLIENTS
    lat: list[float] = []
    stop_at = time.monotonic() + RPC_SECONDS

    async def client(i: int) -> None:
        async with grpc.aio.insecure_channel(address) as ch:
            call = ch.unary_unary(f"/{_SERVICE}/Unary", _identity, _identity)
            while time.monotonic() < stop_at:
                for _ in range(2):
                    t0 = time.perf_counter()
                    await call(b"")
                    lat.append((time.perf_counter() - t0) * 1000)
                counts[i] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return sum(counts) / (time.perf_counter() - t0), _pct(lat, 0.99)


async def _stream_load(address: str) -> float:
    counts = [0] * CLIENTS
    stop_at = time.monotonic() + RPC_SECONDS

    async def client(i: int) -> None:
        async with grpc.aio.insecure_channel(address) as ch:
            call = ch.stream_stream(f"/{_SERVICE}/Stream", _identity, _identity)()
            while time.monotonic() < stop_at:
                for _ in range(2):
                    await call.write(b"")
                    await call.read()
                counts[i] += 1
            await call.done_writing()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return sum(counts) / (time.perf_counter() - t0)


async def _evalsha_once(url: str) -> dict[str, float]:
    """Pairs/s of two bare EVALSHA by CLIENTS connections, and Redis usec per call."""
    import redis.asyncio as aredis

    sync = redis.Redis.from_url(url)
    sha = sync.script_load("return 1")
    sync.config_resetstat()
    counts = [0] * CLIENTS
    stop_at = time.monotonic() + RPC_SECONDS

    async def client(i: int) -> None:
        r = aredis.Redis.from_url(url)
        try:
            while time.monotonic() < stop_at:
                await r.evalsha(sha, 0)
                await r.evalsha(sha, 0)
                counts[i] += 1
        finally:
            await r.aclose()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    rate = sum(counts) / (time.perf_counter() - t0)
    stats = sync.info("commandstats").get("cmdstat_evalsha", {})
    sync.close()
    return {"pairs_per_s": rate, "usec_per_call": float(stats.get("usec_per_call", 0.0))}


def _raw_search(raw: dict[str, list[float]]) -> dict[str, Any]:
    configs = {k: _summary(v) for k, v in raw.items()}
    best = max(configs, key=lambda k: configs[k]["median"])
    return {"rows": ROWS, "best": best, "rows_per_s": configs[best], "configs": configs}


def measure() -> dict[str, Any]:
    """Every floor, in ROUNDS alternating rounds; cached so modules share one measurement."""
    global _cache
    if _cache is not None:
        return _cache
    load_before = os.getloadavg()
    raw: dict[str, list[float]] = {f"{w}w x {f}": [] for w in WRITERS for f in FLUSH_ROWS}
    rpc: dict[str, list[float]] = {}
    with _private_redis() as url:
        for _ in range(ROUNDS):
            for w in WRITERS:
                for f in FLUSH_ROWS:
                    raw[f"{w}w x {f}"].append(_raw_once(w, f))
            for k, v in asyncio.run(_grpc_once()).items():
                rpc.setdefault(k, []).append(v)
            for k, v in asyncio.run(_evalsha_once(url)).items():
                rpc.setdefault(f"evalsha_{k}", []).append(v)
    _cache = {
        "rounds": ROUNDS,
        "clients": CLIENTS,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "raw_ingest": _raw_search(raw),
        "noop_unary_pair_per_s": _summary(rpc["unary_pairs_per_s"]),
        "noop_stream_pair_per_s": _summary(rpc["stream_pairs_per_s"]),
        "noop_unary_p99_ms": _summary(rpc["unary_p99_ms"]),
        "evalsha_pair_per_s": _summary(rpc["evalsha_pairs_per_s"]),
        "evalsha_usec_per_call": _summary(rpc["evalsha_usec_per_call"]),
    }
    return _cache


def ratio(value: float, floor: float) -> float:
    """value / floor, rounded for the table (nan when the floor is 0)."""
    return round(value / floor, 3) if floor else float("nan")


def table(results: dict[str, Any]) -> str:
    """A readable table of every figure (median [min..max] where rounds were taken)."""
    lines = [f"{'figure':<58} {'value':>14}"]
    for name, figures in results.get("figures", {}).items():
        for key, value in _flatten(figures):
            lines.append(f"{name + '.' + key:<58} {value:>14}")
    return "\n".join(lines)


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(d, dict):
        if set(d) == {"median", "min", "max"}:
            return [(prefix, f"{d['median']:g} [{d['min']:g}..{d['max']:g}]")]
        out: list[tuple[str, str]] = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(d, list):
        if any(isinstance(x, dict | list) for x in d):
            return []  # per-round detail stays in the JSON file
        return [(prefix, " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in d))]
    return [(prefix, f"{d:g}" if isinstance(d, float) else str(d))]


def run() -> dict[str, Any]:
    return measure()
