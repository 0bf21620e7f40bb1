"""Coordinator configuration: durations, validation errors that name the key, env overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seamfill.coordinator.config import CoordinatorConfig, parse_duration_us
from seamfill.core.errors import ConfigError

DS = {"table": "t1", "source": "synthetic", "interval": "1m"}


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("1m", 60_000_000),
        ("30s", 30_000_000),
        ("1h", 3_600_000_000),
        ("1d", 86_400_000_000),
        ("250ms", 250_000),
        (5, 5),
        ("0s", 0),
        ("7 us", 7),
    ],
)
def test_durations(text: Any, us: int) -> None:
    assert parse_duration_us(text, "k") == us


@pytest.mark.parametrize("bad", ["1y", "m", "", -1, True, 1.5, "1.5m"])
def test_bad_durations_name_the_key(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"datasets\.x\.interval"):
        parse_duration_us(bad, "datasets.x.interval")


def test_demo_config_loads() -> None:
    cfg = CoordinatorConfig.demo(env={})
    ds = cfg.datasets["demo.ohlcv_1m"]
    assert ds.table == "demo_ohlcv_1m" and ds.interval_us == 60_000_000 and ds.chunk_bars == 1440


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"datasets": {"a{b}": DS}}, "datasets"),
        ({"datasets": {"x": {**DS, "table": "bad name"}}}, "datasets.x.table"),
        ({"datasets": {"x": {**DS, "interval": "soon"}}}, "datasets.x.interval"),
        ({"datasets": {"x": {"table": "t"}}}, "datasets.x.source"),
        ({"datasets": {"x": {**DS, "kind": "quotes"}}}, "datasets.x.kind"),
        ({"datasets": {"x": {**DS, "colour": 1}}}, "datasets.x"),
        ({"datasets": {"x": {**DS, "storage": "nowhere"}}}, "datasets.x.storage"),
        ({"key_prefix": "sf{x}:"}, "key_prefix"),
        ({"lease_ttl_ms": 0}, "lease_ttl_ms"),
        ({"redis_url": "http://x"}, "redis_url"),
        ({"auth": {"root": ["t"]}}, "auth"),
        ({"tls": {"cert": "/nonexistent.pem"}}, "tls"),
        ({"sources": {"s": {"rate_per_second": -1}}}, "sources.s.rate_per_second"),
        ({"lease_ttl": 5}, "unknown key"),
    ],
)
def test_invalid_config_names_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        CoordinatorConfig.from_mapping(data, env={})


def test_env_overrides_apply(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("redis_url: redis://a:1/0\nlease_ttl_ms: 1000\n")
    cfg = CoordinatorConfig.from_yaml(
        path, env={"SEAMFILL_REDIS_URL": "redis://b:2/0", "SEAMFILL_LEASE_TTL_MS": "2000"}
    )
    assert cfg.redis_url == "redis://b:2/0" and cfg.lease_ttl_ms == 2000


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="readable"):
        CoordinatorConfig.from_yaml(tmp_path / "none.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        CoordinatorConfig.from_yaml(bad, env={})
