"""Named assemblies (``ccxt.questdb.ohlcv``) and a user's presets file build settings and a
provider by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamfill.core.errors import ConfigError
from seamfill.sdk import SeamlessProvider, SeamlessSettings, Strategy
from seamfill.sdk.sla import HoldMode, OnBreach


def test_the_reference_setup_guides_preset_builds_a_provider_by_name() -> None:
    with SeamlessProvider.from_preset(
        "ccxt.questdb.ohlcv", exchange_id="kraken", timeframe="5m"
    ) as provider:
        fetcher = provider.aio.fetcher
        s = provider.settings
    assert type(fetcher).__name__ == "CcxtFetcher" and fetcher.exchange_name == "kraken"
    assert s.fetcher == "ccxt" and s.fetcher_options == {"exchange": "kraken"}
    assert s.interval == "5m" and s.table == "ohlcv_1m" and s.questdb_url == "http://127.0.0.1:9000"
    assert s.strategy is Strategy.SEAMLESS
    assert s.sla.on_breach is OnBreach.DOWNGRADE and s.sla.min_coverage == 0.95
    assert s.sla.on_hold_breach is HoldMode.DOWNGRADE
    assert s.conformance.allow_partial


def test_a_preset_named_in_yaml_is_the_base_of_the_section(tmp_path: Path) -> None:
    path = tmp_path / "seamfill.yaml"
    path.write_text("seamless:\n  preset: ccxt.questdb.ohlcv\n  table: bars_1h\n  interval: 1h\n")
    s = SeamlessSettings.from_yaml(path, env={})
    assert (s.fetcher, s.table, s.interval, s.settle_ms) == ("ccxt", "bars_1h", "1h", 5000)


def test_a_users_presets_file_adds_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "presets.yaml"
    path.write_text(
        "team.replay:\n"
        "  seamless: {fetcher: synthetic, table: replay, strategy: fail_fast}\n"
        "  sla: {preset: strict, max_lag_ms: 120000}\n"
    )
    s = SeamlessSettings.from_preset("team.replay", presets_file=path)
    assert s.fetcher == "synthetic" and s.strategy is Strategy.FAIL_FAST
    assert s.sla.max_lag_ms == 120000 and s.sla.on_breach is OnBreach.RAISE  # strict's
    monkeypatch.setenv("SEAMFILL_PRESETS", str(path))
    assert SeamlessSettings.from_preset("team.replay", cache_bytes=0).cache_bytes == 0


def test_an_unknown_preset_names_the_choices() -> None:
    with pytest.raises(
        ConfigError,
        match=r"preset 'ccxt\.questdb' is not one of strict, tolerant, ccxt\.questdb\.ohlcv",
    ):
        SeamlessSettings.from_preset("ccxt.questdb")


def test_the_environment_names_a_preset_and_the_new_settings() -> None:
    env = {
        "SEAMFILL_PRESET": "ccxt.questdb.ohlcv",
        "SEAMFILL_PROFILE": "dev",
        "SEAMFILL_CACHE_TTL_MS": "60000",
        "SEAMFILL_ON_COORDINATOR_UNAVAILABLE": "inline",
    }
    s = SeamlessSettings.from_env(env)
    assert (s.fetcher, s.profile, s.cache_ttl_ms) == ("ccxt", "dev", 60000)
    assert s.on_coordinator_unavailable == "inline"
    with pytest.raises(ConfigError, match="profile = 'staging' is not one of default, dev, prod"):
        SeamlessSettings.from_env({"SEAMFILL_PROFILE": "staging"})
