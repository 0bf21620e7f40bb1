"""``seamfill health`` against the real Redis, QuestDB and metrics endpoints."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY, start_http_server

import seamfill.sdk.metrics  # noqa: F401 - registers the SDK's series on the default registry
from seamfill.cli.health import health

SEAMFILL = str(Path(sys.executable).with_name("seamfill"))


def closed_port() -> int:
    """A port nothing listens on: bound once to get a free number, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sdk_metrics_url() -> Iterator[str]:
    server, thread = start_http_server(0, addr="127.0.0.1", registry=REGISTRY)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _args(redis_url: str, questdb_url: str, questdb_dsn: str, *extra: str) -> list[str]:
    return [
        "--redis-url",
        redis_url,
        "--questdb-url",
        questdb_url,
        "--questdb-dsn",
        questdb_dsn,
        "--key-prefix",
        "sftest:health:",
        "--timeout",
        "2",
        *extra,
    ]


def test_stopped_redis_names_the_failed_check_and_the_fix(
    questdb_url: str, questdb_dsn: str
) -> None:
    """The real command, as an operator runs it, with Redis pointed at a closed port."""
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    out = subprocess.run(
        [
            SEAMFILL,
            "health",
            *_args(dead, questdb_url, questdb_dsn, "--coordinator", f"127.0.0.1:{closed_port()}"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 1, out.stdout + out.stderr
    lines = {
        line.split()[1]: line
        for line in out.stdout.splitlines()
        if line[:4] in ("OK  ", "FAIL", "SKIP")
    }
    assert lines["redis"].startswith("FAIL redis")
    assert dead in lines["redis"] and "fix: start Redis" in lines["redis"]
    assert lines["questdb-http"].startswith("OK")
    assert lines["questdb-pgwire"].startswith("OK")
    assert "redis" in out.stdout.splitlines()[-1] and "failed" in out.stdout.splitlines()[-1]


def test_healthy_services_and_metrics_endpoint_pass(
    redis_url: str, questdb_url: str, questdb_dsn: str, sdk_metrics_url: str
) -> None:
    result = CliRunner().invoke(
        health,
        _args(
            redis_url,
            questdb_url,
            questdb_dsn,
            "--metrics",
            sdk_metrics_url,
            "--coordinator",
            f"127.0.0.1:{closed_port()}",
        ),
    )
    lines = {
        line.split()[1]: line
        for line in result.output.splitlines()
        if line[:4] in ("OK  ", "FAIL", "SKIP")
    }
    assert lines["redis"].startswith("OK   redis") and "writable" in lines["redis"]
    assert lines["metrics"].startswith("OK") and "sdk series" in lines["metrics"]
    # Only the coordinator (nothing listens there) fails, and the exit code says so.
    assert [k for k, v in lines.items() if v.startswith("FAIL")] == ["coordinator"]
    assert result.exit_code == 1


def test_metrics_endpoint_without_seamfill_series_fails(
    redis_url: str, questdb_url: str, questdb_dsn: str
) -> None:
    from prometheus_client import CollectorRegistry, Counter

    other = CollectorRegistry()
    Counter("unrelated_total", "x", registry=other)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=other)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        result = CliRunner().invoke(
            health, [*_args(redis_url, questdb_url, questdb_dsn), "--metrics", url, "--json"]
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    import json

    doc = json.loads(result.output)
    metrics = next(c for c in doc["checks"] if c["name"] == "metrics")
    assert metrics["ok"] is False and "no seamfill series" in metrics["detail"]
    assert doc["ok"] is False and result.exit_code == 1


def test_config_file_is_parsed_and_its_addresses_used(
    tmp_path: Path, questdb_url: str, questdb_dsn: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets: [unclosed\n")
    result = CliRunner().invoke(health, ["--config", str(bad), "--timeout", "1", "--json"])
    import json

    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["config"]["ok"] is False and "not valid YAML" in checks["config"]["detail"]

    dead = f"redis://127.0.0.1:{closed_port()}/0"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"redis_url: {dead}\nstorage:\n  default: {{http: '{questdb_url}', "
        f"dsn: '{questdb_dsn}'}}\ndatasets: {{}}\n"
    )
    result = CliRunner().invoke(health, ["--config", str(cfg), "--timeout", "1", "--json"])
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    # The file's redis_url wins over the default, so the redis check fails on the dead port.
    assert dead in checks["redis"]["detail"] and checks["redis"]["ok"] is False
    assert checks["questdb-http"]["ok"] is True
    assert result.exit_code == 1


def test_every_check_passes_against_a_running_fleet(
    coordinator: Any,
    tmp_path: Path,
    redis_url: str,
    questdb_url: str,
    questdb_dsn: str,
    sdk_metrics_url: str,
) -> None:
    """A real coordinator (SERVING over grpc.health.v1), its own config file, Redis, QuestDB
    and a metrics endpoint: every line is OK and the exit code is 0."""
    from tests.coordinator_fixtures import write_config

    cfg = write_config(
        tmp_path / "c.yaml",
        redis_url,
        coordinator.key_prefix,
        storage={"default": {"http": questdb_url, "dsn": questdb_dsn}},
    )
    result = CliRunner().invoke(
        health,
        ["--config", str(cfg), "--coordinator", coordinator.address, "--metrics", sdk_metrics_url],
    )
    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["OK", "config"],
        ["OK", "coordinator"],
        ["OK", "redis"],
        ["OK", "questdb-http"],
        ["OK", "questdb-pgwire"],
        ["OK", "metrics"],
    ]
    assert "valid coordinator config (1 datasets)" in lines[0]
    assert f"{coordinator.address} SERVING" in lines[1]
    assert lines[-1].startswith("all checks passed")
