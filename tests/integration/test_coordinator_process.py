"""`seamfill coordinator serve` as a real process: listening line, metrics endpoint, SIGTERM."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from seamfill.core.types import Series, TimeRange
from seamfill.sdk.client._coordinator import SyncCoordinatorClient
from tests.coordinator_fixtures import (
    TEST_DATASET,
    start_coordinator_process,
    test_dataset_spec,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_exports_metrics_and_stops_cleanly(
    tmp_path: Path, redis_url: str, key_prefix: str, unique: str
) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        redis_url,
        key_prefix,
        {TEST_DATASET: test_dataset_spec(f"bars_{unique}")},
    )
    mport = _free_port()
    proc = start_coordinator_process(cfg, extra_args=("--metrics-port", str(mport)))
    try:
        with SyncCoordinatorClient(proc.address) as c:
            c.ensure_range(Series(TEST_DATASET, "BTC"), TimeRange(0, 3_600_000_000))

        def scraped() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                text: str = r.read().decode()
            return text if 'seamfill_queue_depth{dataset="test.bars_1m"} 1.0' in text else ""

        text = wait_for(scraped, timeout=20, interval=0.5)
        assert 'seamfill_rpc_latency_seconds_count{method="EnsureRange"} 1.0' in text
    finally:
        assert proc.stop() == 0
