"""compose.yaml: the whole fleet for people with Docker. No engine runs here, so the file is
parsed and checked: the services, their images, commands, health checks and start order, and
that the coordinator config it ships is one the coordinator accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.unit.test_helm_support import ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SEAMFILL = ("coordinator", "worker-1", "worker-2", "demo")
_VAR = re.compile(r"\$\{([A-Z0-9_]+):-([^}]*)\}")


def interpolate(text: str) -> str:
    """What compose makes of `text` with no variables set: defaults, and `$$` as `$`."""
    return _VAR.sub(lambda m: m.group(2), text).replace("$$", "$")


def _flag(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def test_the_fleet_is_all_there() -> None:
    expected = {"redis", "questdb", "coordinator", "worker-1", "worker-2", "prometheus", "demo"}
    assert set(SERVICES) == expected


def test_third_party_images_are_pinned() -> None:
    for name in ("redis", "questdb", "prometheus"):
        image = SERVICES[name]["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: pin a version, not {image!r}"
    assert SERVICES["questdb"]["image"] == "questdb/questdb:9.3.4"


def test_seamfill_services_run_the_one_image_built_here() -> None:
    for name in SEAMFILL:
        service = SERVICES[name]
        assert service["image"] == "seamfill:local", name
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
        assert service["read_only"] is True, name
    assert (ROOT / "Dockerfile").is_file()


def test_coordinator_command_and_config() -> None:
    from seamfill.coordinator.config import CoordinatorConfig

    coordinator = SERVICES["coordinator"]
    args = coordinator["command"]
    assert args[:2] == ["coordinator", "serve"]
    path = _flag(args, "--config")
    assert _flag(args, "--host") == "0.0.0.0"
    assert _flag(args, "--port") == "50051"
    assert _flag(args, "--metrics-port") == "9464"
    mounted = {c["target"]: c["source"] for c in coordinator["configs"]}
    text = interpolate(COMPOSE["configs"][mounted[path]]["content"])
    config = CoordinatorConfig.from_mapping(yaml.safe_load(text), env={})
    assert config.redis_url == "redis://redis:6379/0"
    assert config.storage["default"].http == "http://questdb:9000"
    assert config.auth.enabled, "the coordinator listens on 0.0.0.0: auth must be on"
    assert "demo.ohlcv_1m" in config.datasets


@pytest.mark.parametrize("name", ["worker-1", "worker-2"])
def test_workers_point_at_the_fleet_and_drain_on_stop(name: str) -> None:
    worker = SERVICES[name]
    args = worker["command"]
    assert args[:2] == ["worker", "run"]
    assert _flag(args, "--coordinator") == "coordinator:50051"
    assert _flag(args, "--questdb-url") == "http://questdb:9000"
    assert _flag(args, "--metrics-port") == "9465"
    grace = int(_flag(args, "--grace-seconds"))
    stop = int(worker["stop_grace_period"].removesuffix("s"))
    heartbeat = 30000 / 1000 / 3
    assert stop > grace + heartbeat
    env = {k: interpolate(str(v)) for k, v in worker["environment"].items()}
    assert env["SEAMFILL_WORKER_ID"] == name
    assert env["SEAMFILL_WORKER_TOKEN"] == "demo-worker-token"
    assert worker["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert (
        SERVICES["worker-1"]["environment"]["SEAMFILL_WORKER_ID"]
        != SERVICES["worker-2"]["environment"]["SEAMFILL_WORKER_ID"]
    )


def test_tokens_agree_between_coordinator_workers_and_demo() -> None:
    config = yaml.safe_load(interpolate(COMPOSE["configs"]["coordinator"]["content"]))
    worker_token = interpolate(SERVICES["worker-1"]["environment"]["SEAMFILL_WORKER_TOKEN"])
    admin_token = interpolate(SERVICES["demo"]["environment"]["SEAMFILL_TOKEN"])
    assert config["auth"]["worker"] == [worker_token]
    assert config["auth"]["admin"] == [admin_token]


def test_demo_backfills_three_series_once_the_fleet_is_up() -> None:
    demo = SERVICES["demo"]
    assert demo["restart"] == "no"
    assert demo["environment"]["SEAMFILL_COORDINATOR"] == "coordinator:50051"
    script = interpolate(demo["command"][0])
    assert "set -e" in script
    assert "seamfill admin backfill demo.ohlcv_1m/$symbol" in script and "--wait" in script
    assert "for symbol in BTC-USDT ETH-USDT SOL-USDT" in script
    deps = demo["depends_on"]
    assert deps["coordinator"]["condition"] == "service_healthy"
    assert {"worker-1", "worker-2"} <= set(deps)


def test_health_checks_gate_the_start_order() -> None:
    for name in ("redis", "questdb", "coordinator", "prometheus"):
        check = SERVICES[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["retries"] >= 3, name
    assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/status" in SERVICES["questdb"]["healthcheck"]["test"][1]
    probe = SERVICES["coordinator"]["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"] and "HealthStub" in probe[3]
    compile(probe[3], "coordinator-healthcheck", "exec")  # the one-liner is valid Python
    deps = SERVICES["coordinator"]["depends_on"]
    assert deps["redis"]["condition"] == deps["questdb"]["condition"] == "service_healthy"


def test_redis_keeps_an_append_only_file() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


def test_prometheus_scrapes_every_seamfill_process_and_loads_the_chart_rules() -> None:
    prometheus = SERVICES["prometheus"]
    mounted = {c["target"]: c["source"] for c in prometheus["configs"]}
    config = yaml.safe_load(
        COMPOSE["configs"][mounted["/etc/prometheus/prometheus.yml"]]["content"]
    )
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    assert targets == {"coordinator:9464", "worker-1:9465", "worker-2:9465"}
    for target in targets:
        assert target.split(":")[0] in SERVICES
    rules_mount = next(v for v in prometheus["volumes"] if v.endswith(":/etc/prometheus/rules:ro"))
    assert (ROOT / rules_mount.split(":")[0]).is_dir()
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
