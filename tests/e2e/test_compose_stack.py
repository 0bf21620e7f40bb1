"""compose.yaml's fleet without Docker: its coordinator config, its coordinator, worker and demo
commands and its health check, run as real processes against the real Redis and QuestDB (with
this test's own key prefix and table). The demo must backfill its 3 x 7 days of 1-minute bars."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import QUESTDB_DSN, QUESTDB_URL
from tests.unit.test_compose import COMPOSE, SERVICES, interpolate
from tests.unit.test_helm_support import SEAMFILL, replace_flags, seamfill_process

pytestmark = pytest.mark.e2e

DEMO_ROWS = 3 * 7 * 1440


def _sql(query: str) -> dict[str, Any]:
    url = f"{QUESTDB_URL}/exec?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def _compose_config(redis_url: str, key_prefix: str, table: str) -> dict[str, Any]:
    """The coordinator config compose ships, pointed at this machine's servers."""
    config: dict[str, Any] = yaml.safe_load(
        interpolate(COMPOSE["configs"]["coordinator"]["content"])
    )
    assert config["redis_url"] == "redis://redis:6379/0"
    config["redis_url"] = redis_url
    config["key_prefix"] = key_prefix
    config["storage"]["default"] = {"http": QUESTDB_URL, "dsn": QUESTDB_DSN}
    config["datasets"]["demo.ohlcv_1m"]["table"] = table
    return config


def test_compose_demo_backfills_through_the_compose_fleet(
    tmp_path: Path, redis_url: str, questdb_url: str, key_prefix: str, unique: str
) -> None:
    table = f"compose_{unique}"
    config_path = tmp_path / "coordinator.yaml"
    config_path.write_text(yaml.safe_dump(_compose_config(redis_url, key_prefix, table)))
    coordinator_args = replace_flags(
        SERVICES["coordinator"]["command"],
        {"--config": str(config_path), "--host": "127.0.0.1", "--port": "0", "--metrics-port": "0"},
    )
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(
            seamfill_process(coordinator_args, {}, r"listening on (\S+:\d+)")
        )
        probe = SERVICES["coordinator"]["healthcheck"]["test"][3].replace(
            "127.0.0.1:50051", address
        )
        health = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
        assert health.returncode == 0, health.stderr

        for name in ("worker-1", "worker-2"):
            service = SERVICES[name]
            args = replace_flags(
                service["command"],
                {"--coordinator": address, "--questdb-url": questdb_url, "--metrics-port": "0"},
            )
            # A short long-poll, so SIGTERM at the end is not kept waiting for an idle Acquire.
            args += ["--acquire-wait-ms", "500"]
            env = {k: interpolate(str(v)) for k, v in service["environment"].items()}
            stack.enter_context(seamfill_process(args, env, r"worker \S+ (started)"))

        demo = SERVICES["demo"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
        env |= {k: interpolate(str(v)) for k, v in demo["environment"].items()}
        env["SEAMFILL_COORDINATOR"] = address
        env["PATH"] = f"{Path(SEAMFILL).parent}{os.pathsep}{env.get('PATH', '')}"
        proc = subprocess.run(
            [*demo["entrypoint"], interpolate(demo["command"][0])],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for symbol in ("BTC-USDT", "ETH-USDT", "SOL-USDT"):
            assert f"demo.ohlcv_1m/{symbol}" in proc.stdout
        assert proc.stdout.count("100.0% covered, 0 gaps") == 3, proc.stdout
    try:
        count = _sql(f"SELECT count() FROM '{table}'")["dataset"][0][0]
        assert count == DEMO_ROWS
        symbols = _sql(f"SELECT count_distinct(symbol) FROM '{table}'")["dataset"][0][0]
        assert symbols == 3
    finally:
        _sql(f"DROP TABLE IF EXISTS '{table}'")
