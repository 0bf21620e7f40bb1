"""The chart's coordinator, as a real process: the init container's script renders the config
from the chart's ConfigMap, the container's own arguments start `seamfill coordinator serve`
against a real Redis, the compose health check sees it SERVING, auth is on, SIGTERM exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import QUESTDB_DSN, QUESTDB_URL
from tests.unit.test_helm_support import (
    CHART,
    ROOT,
    SEAMFILL,
    container,
    fullname,
    one,
    render,
    replace_flags,
    seamfill_process,
)

pytestmark = pytest.mark.integration

TOKENS = {"reader": "r-boot", "worker": "w-boot", "admin": "a-boot"}


@pytest.fixture
def coordinator(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[str]:
    """Start the chart's coordinator; yield its address; stop it with SIGTERM."""
    manifests = render(("trial-values.yaml",))
    base = yaml.safe_load(
        one(manifests, "ConfigMap", fullname("coordinator"))["data"]["coordinator.yaml"]
    )
    base["key_prefix"] = key_prefix
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
    env = {
        **clean,
        "SEAMFILL_REDIS_URL": redis_url,
        "SEAMFILL_QUESTDB_URL": QUESTDB_URL,
        "SEAMFILL_QUESTDB_DSN": QUESTDB_DSN,
        **{f"SEAMFILL_AUTH_{role.upper()}_TOKEN": token for role, token in TOKENS.items()},
    }
    config = tmp_path / "coordinator.yaml"
    subprocess.run(
        [
            sys.executable,
            str(CHART / "files" / "render_config.py"),
            str(tmp_path / "base.yaml"),
            str(config),
        ],
        env=env,
        check=True,
        timeout=60,
    )
    deployment = one(manifests, "Deployment", fullname("coordinator"))
    args = replace_flags(
        container(deployment, "coordinator")["args"],
        # Loopback and a free port: the test shares the machine with other tests.
        {"--config": str(config), "--host": "127.0.0.1", "--port": "0", "--metrics-port": "0"},
    )
    with seamfill_process(
        args, {"SEAMFILL_REDIS_URL": redis_url}, r"listening on (\S+:\d+)"
    ) as address:
        yield address


def _admin(address: str, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
    env["SEAMFILL_COORDINATOR"] = address
    if token is not None:
        env["SEAMFILL_TOKEN"] = token
    return subprocess.run(
        [SEAMFILL, "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_chart_coordinator_boots_serves_health_and_requires_auth(coordinator: str) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    probe = compose["services"]["coordinator"]["healthcheck"]["test"][3]
    probe = probe.replace("127.0.0.1:50051", coordinator)
    health = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert health.returncode == 0, health.stderr

    listed = _admin(coordinator, TOKENS["admin"], "datasets", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "demo.ohlcv_1m" in listed.stdout

    anonymous = _admin(coordinator, None, "datasets", "--json")
    assert anonymous.returncode == 1
    assert "Unauthenticated" in anonymous.stdout + anonymous.stderr


def test_chart_worker_runs_and_answers_its_probe(coordinator: str) -> None:
    deployment = one(render(("trial-values.yaml",)), "Deployment", fullname("worker"))
    c = container(deployment, "worker")
    args = replace_flags(
        c["args"],
        {"--coordinator": coordinator, "--questdb-url": QUESTDB_URL, "--metrics-port": "0"},
    )
    # A short long-poll, so SIGTERM at the end is not kept waiting for an idle Acquire.
    args += ["--acquire-wait-ms", "500"]
    env = {"SEAMFILL_WORKER_TOKEN": TOKENS["worker"], "SEAMFILL_WORKER_ID": "chart-boot"}
    with seamfill_process(args, env, r"metrics on :(\d+)") as port:
        probe = c["livenessProbe"]["httpGet"]
        url = f"http://127.0.0.1:{port}{probe['path']}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert b"seamfill_worker" in response.read()
