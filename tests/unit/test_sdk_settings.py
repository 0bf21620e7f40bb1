"""SeamlessSettings: YAML with env overrides; unknown keys and bad values fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamfill.core.errors import ConfigError
from seamfill.sdk.settings import SeamlessSettings, Strategy, parse_coordinator_url
from seamfill.sdk.sla import OnBreach

YAML = """
seamless:
  coordinator_url: grpc://127.0.0.1:50051   # also host:port, grpcs://, https:// (TLS)
  publish_fingerprint: true
  preview_fingerprint: false
  early_fingerprint: false
  strategy: auto_backfill
  sla:
    preset: tolerant
    backfill_deadline_ms: 300
other_tool:
  anything: goes
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "seamfill.yaml"
    p.write_text(text)
    return p


def test_yaml_section_loads(tmp_path: Path) -> None:
    s = SeamlessSettings.from_yaml(write(tmp_path, YAML), env={})
    assert s.coordinator is not None and s.coordinator.target == "127.0.0.1:50051"
    assert not s.coordinator.tls
    assert s.publish_fingerprint and not s.preview_fingerprint and not s.early_fingerprint
    assert s.strategy is Strategy.AUTO_BACKFILL
    assert s.sla.backfill_deadline_ms == 300 and s.sla.on_breach is OnBreach.DOWNGRADE


def test_env_overrides_yaml(tmp_path: Path) -> None:
    env = {
        "SEAMFILL_COORDINATOR_URL": "grpcs://coord.example:443",
        "SEAMFILL_PUBLISH_FINGERPRINT": "false",
        "SEAMFILL_STRATEGY": "FAIL_FAST",
        "SEAMFILL_SLA_TOTAL_DEADLINE_MS": "1234",
        "SEAMFILL_CACHE_BYTES": "0",
    }
    s = SeamlessSettings.from_yaml(write(tmp_path, YAML), env=env)
    assert s.coordinator is not None and s.coordinator.tls
    assert not s.publish_fingerprint and s.strategy is Strategy.FAIL_FAST
    assert s.sla.total_deadline_ms == 1234 and s.cache_bytes == 0


def test_from_env_alone() -> None:
    s = SeamlessSettings.from_env(
        {"SEAMFILL_COORDINATOR": "10.0.0.1:7000", "SEAMFILL_CONFORMANCE_PRESET": "tolerant"}
    )
    assert s.coordinator_url == "10.0.0.1:7000" and s.conformance.partial_ok
    assert SeamlessSettings.from_env({}).coordinator is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("seamless:\n  coordinator: x:1\n", "seamless.coordinator is not a setting"),
        ("seamless:\n  publish_fingerprint: maybe\n", "publish_fingerprint"),
        ("seamless:\n  strategy: yolo\n", "strategy"),
        ("seamless:\n  sla: {total_deadline_ms: -5}\n", "sla.total_deadline_ms"),
        ("seamless:\n  sla: {budget: 5}\n", "sla.budget"),
        ("seamless:\n  conformance: {severities: {ohlc: shout}}\n", "severities.ohlc"),
        ("seamless:\n  coordinator_url: ftp://x:1\n", "coordinator_url"),
        ("seamless:\n  interval: fortnightly\n", "interval"),
        ("seamless:\n  questdb_url: 127.0.0.1:9000\n", "questdb_url"),
        ("seamless: [1, 2]\n", "mapping"),
    ],
)
def test_bad_yaml_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        SeamlessSettings.from_yaml(write(tmp_path, text), env={})


def test_bad_env_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SEAMFILL_PARTIAL_OK"):
        SeamlessSettings.from_env({"SEAMFILL_PARTIAL_OK": "perhaps"})
    with pytest.raises(ConfigError, match="SEAMFILL_SLA_LIVE_DEADLINE_MS"):
        SeamlessSettings.from_env({"SEAMFILL_SLA_LIVE_DEADLINE_MS": "soon"})


@pytest.mark.parametrize(
    ("url", "target", "tls"),
    [
        ("grpc://127.0.0.1:50051", "127.0.0.1:50051", False),
        ("127.0.0.1:50051", "127.0.0.1:50051", False),
        ("coordinator:7000", "coordinator:7000", False),
        ("grpcs://c.example:8443", "c.example:8443", True),
        ("https://c.example", "c.example:443", True),
        ("grpc://[::1]:5000", "[::1]:5000", False),
    ],
)
def test_coordinator_url_forms(url: str, target: str, tls: bool) -> None:
    addr = parse_coordinator_url(url)
    assert (addr.target, addr.tls) == (target, tls)


def test_constructor_checks_and_overrides() -> None:
    with pytest.raises(ConfigError, match="partial_ok"):
        SeamlessSettings(partial_ok="yes")  # type: ignore[arg-type]
    s = SeamlessSettings(questdb_dsn="postgresql://admin:quest@db.example:8812/qdb")
    assert s.storage_url == "http://db.example:9000"
    assert s.with_overrides(partial_ok=True).conformance_pipeline.partial_ok
    with pytest.raises(ConfigError, match="colour"):
        s.with_overrides(colour="red")
