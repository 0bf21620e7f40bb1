"""The console's series timeline against GetCoverage on the same series, in the same run.

One series of 100k disjoint coverage intervals (and so 100k gaps) in a private Redis; the whole
series is asked for both ways, in alternating rounds: GetCoverage over gRPC (the floor), and the
console's series page over HTTP (GetCoverage's store read, plus the dead and backing-off chunks,
binning per pixel and the SVG). Target: ``timeline_vs_get_coverage`` <= 3.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import redis

from seamfill.coordinator.keys import Keys
from seamfill.core.types import Series, TimeRange
from seamfill.sdk.client._coordinator import CoordinatorClient
from tests.bench.coordinator import DATASET, MIN, PREFIX, _load_intervals, _private_redis, _spec
from tests.coordinator_fixtures import start_coordinator_process, write_config

INTERVALS = 100_000
ROUNDS = 5
CALLS = 5


def _console_url(output: list[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in output:
            if line.startswith("seamfill console on "):
                return line.split()[-1].rstrip("/")
        time.sleep(0.05)
    raise RuntimeError("the coordinator did not print its console URL")


async def _measure(address: str, base: str, symbol: str) -> dict[str, Any]:
    whole = TimeRange(0, 2 * INTERVALS * MIN)
    query = urllib.parse.urlencode(
        {"series": f"{DATASET}/{symbol}", "start": whole.start_us, "end": whole.end_us}
    )
    page = f"{base}/series?{query}&fragment=1"

    def get_page() -> int:
        with urllib.request.urlopen(page, timeout=120) as resp:
            return len(resp.read())

    rpc, web = [], []
    async with CoordinatorClient(address, timeout_s=120) as c:
        cov = await c.get_coverage(Series(DATASET, symbol), whole)
        assert len(cov.covered) == INTERVALS, len(cov.covered)
        assert "s-gap" in urllib.request.urlopen(page, timeout=120).read().decode()
        for _ in range(ROUNDS):  # alternating rounds: both see the same load on this machine
            t0 = time.perf_counter()
            for _ in range(CALLS):
                await c.get_coverage(Series(DATASET, symbol), whole)
            rpc.append((time.perf_counter() - t0) / CALLS * 1000)
            t0 = time.perf_counter()
            for _ in range(CALLS):
                await asyncio.to_thread(get_page)
            web.append((time.perf_counter() - t0) / CALLS * 1000)
    g, t = statistics.median(rpc), statistics.median(web)
    return {
        "intervals": INTERVALS,
        "get_coverage_ms_100k": round(g, 1),
        "timeline_ms_100k": round(t, 1),
        "timeline_vs_get_coverage": round(t / g, 2),
        "get_coverage_ms_rounds": [round(x, 1) for x in rpc],
        "timeline_ms_rounds": [round(x, 1) for x in web],
        "target_timeline_vs_get_coverage_max": 3.0,
    }


def run() -> dict[str, Any]:
    with _private_redis() as url, tempfile.TemporaryDirectory() as tmp:
        r = redis.Redis.from_url(url)
        cfg = write_config(Path(tmp) / "c.yaml", url, PREFIX, _spec(1))
        proc = start_coordinator_process(
            cfg, extra_args=("--log-level", "WARNING", "--ui-port", "0")
        )
        try:
            symbol = "TIMELINE100k"
            _load_intervals(r, Keys(PREFIX).coverage(DATASET, symbol), INTERVALS)
            return asyncio.run(_measure(proc.address, _console_url(proc.output), symbol))
        finally:
            proc.stop()
            r.close()
