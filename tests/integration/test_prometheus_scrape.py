"""A real Prometheus server scrapes seamfill's metrics endpoints and answers queries about them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, start_http_server

from seamfill.sdk import metrics as sdk_metrics

PROMETHEUS = "/usr/bin/prometheus"


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus server on loopback scraping the given targets every 500 ms."""

    def __init__(self, workdir: Path, targets: dict[str, str]) -> None:
        if not os.path.exists(PROMETHEUS):
            msg = f"{PROMETHEUS} is missing: apt-get install prometheus"
            pytest.fail(msg) if os.environ.get("CI") else pytest.skip(msg)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": "500ms",
                "scrape_timeout": "400ms",
                "evaluation_interval": "1s",
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.workdir = workdir
        wait_for("prometheus to be ready", self._ready)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Prometheus]]:
    started: list[Prometheus] = []

    def start(targets: dict[str, str]) -> Prometheus:
        p = Prometheus(tmp_path, targets)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def sdk_metrics_target() -> Iterator[str]:
    """This process's registry (the SDK's series) on an HTTP port, as a strategy would expose it."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=REGISTRY)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_sdk_sla_histogram_is_queryable(
    prometheus: Callable[[dict[str, str]], Prometheus], sdk_metrics_target: str
) -> None:
    sdk_metrics.SLA_DEADLINE_SECONDS.labels(stage="total").observe(0.2)
    prom = prometheus({"seamfill-sdk": sdk_metrics_target})
    got = wait_for(
        "seamless_sla_deadline_seconds in prometheus",
        lambda: prom.query('seamless_sla_deadline_seconds_count{job="seamfill-sdk",stage="total"}'),
    )
    assert float(got[0]["value"][1]) >= 1
    up = prom.query('up{job="seamfill-sdk"}')
    assert up and up[0]["value"][1] == "1"


def test_fleet_metrics_are_queryable(
    prometheus: Callable[[dict[str, str]], Prometheus],
    sdk_metrics_target: str,
    tmp_path: Path,
    redis_url: str,
    key_prefix: str,
    questdb_url: str,
    unique: str,
) -> None:
    """Coordinator and worker processes with metrics ports, an SDK read in this process, and a
    Prometheus scraping all three: the series operators alert on are there to query."""
    from seamfill.sdk import SeamlessProvider, SeamlessSettings
    from tests.coordinator_fixtures import (
        start_coordinator_process,
        test_dataset_spec,
        write_config,
    )
    from tests.integration.test_cli_admin_fleet import WorkerProcess, drop_table

    table = f"prom_{unique}"
    dataset = "prom.bars_1m"
    config = write_config(
        tmp_path / "coordinator.yaml",
        redis_url,
        key_prefix,
        {dataset: test_dataset_spec(table)},
        storage={"default": {"http": questdb_url}},
    )
    metrics_port = _free_port()
    coord = start_coordinator_process(config, extra_args=("--metrics-port", str(metrics_port)))
    worker = None
    try:
        worker = WorkerProcess(tmp_path, coord.address, questdb_url, "pw1")
        settings = SeamlessSettings(
            coordinator_url=coord.address,
            questdb_url=questdb_url,
            dataset=dataset,
            strategy="auto_backfill",
        )
        with SeamlessProvider(settings) as provider:
            result = provider.read(
                1_704_067_200_000_000, 1_704_067_200_000_000 + 120 * 60_000_000, node_id="BTC"
            )
        assert result.meta.complete and len(result.frame) == 120
        prom = prometheus(
            {
                "seamfill-coordinator": f"127.0.0.1:{metrics_port}",
                "seamfill-worker": f"127.0.0.1:{worker.metrics_port}",
                "seamfill-sdk": sdk_metrics_target,
            }
        )
        ratio = wait_for(
            "backfill_completion_ratio",
            lambda: prom.query(
                f'backfill_completion_ratio{{job="seamfill-coordinator",dataset="{dataset}"}}'
            ),
        )
        assert 0.0 <= float(ratio[0]["value"][1]) <= 1.0
        sla = wait_for(
            "seamless_sla_deadline_seconds",
            lambda: prom.query(
                'sum by (stage) (seamless_sla_deadline_seconds_count{job="seamfill-sdk"})'
            ),
        )
        assert {s["metric"]["stage"] for s in sla} >= {"storage", "backfill"}
        rows = wait_for(
            "rows written by the worker",
            lambda: prom.query(
                f'seamfill_worker_rows_written_total{{job="seamfill-worker",dataset="{dataset}"}}'
            ),
        )
        assert float(rows[0]["value"][1]) == 120
        up = prom.query("up == 1")
        assert {u["metric"]["job"] for u in up} == {
            "seamfill-coordinator",
            "seamfill-worker",
            "seamfill-sdk",
        }
    finally:
        if worker is not None:
            worker.stop()
        coord.stop()
        drop_table(questdb_url, table)
