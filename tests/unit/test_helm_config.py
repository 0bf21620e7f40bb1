"""render_config.py: the coordinator's config file is the ConfigMap's base plus credentials
from Secrets, merged at pod start; a missing credential stops the pod naming the value to set."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.unit.test_helm_support import CHART, fullname, one, render

SCRIPT = CHART / "files" / "render_config.py"

ENV = {
    "SEAMFILL_REDIS_URL": "redis://:pw@redis:6379/0",
    "SEAMFILL_QUESTDB_URL": "http://questdb:9000",
    "SEAMFILL_QUESTDB_DSN": "postgresql://admin:secret@questdb:8812/qdb",
    "SEAMFILL_AUTH_READER_TOKEN": "r-1",
    "SEAMFILL_AUTH_WORKER_TOKEN": "w-1",
    "SEAMFILL_AUTH_ADMIN_TOKEN": "a-1",
}
BASE = {
    "key_prefix": "sf",
    "lease_ttl_ms": 30000,
    "datasets": {"demo.ohlcv_1m": {"table": "ohlcv_1m", "source": "synthetic", "interval": "1m"}},
}


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_config", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_merges_credentials_into_the_base() -> None:
    config = _module().render(BASE, ENV)
    assert config["redis_url"] == ENV["SEAMFILL_REDIS_URL"]
    assert config["storage"] == {
        "default": {"http": ENV["SEAMFILL_QUESTDB_URL"], "dsn": ENV["SEAMFILL_QUESTDB_DSN"]}
    }
    assert config["auth"] == {"reader": ["r-1"], "worker": ["w-1"], "admin": ["a-1"]}
    assert config["datasets"] == BASE["datasets"]
    assert "auth" not in BASE, "the base is not modified"


def test_storage_from_the_base_is_kept_when_no_dsn_is_given() -> None:
    env = {k: v for k, v in ENV.items() if k != "SEAMFILL_QUESTDB_DSN"}
    base = {**BASE, "storage": {"default": {"dsn": "postgresql://u:p@q:8812/qdb"}, "other": {}}}
    config = _module().render(base, env)
    assert config["storage"]["default"]["dsn"] == "postgresql://u:p@q:8812/qdb"
    assert config["storage"]["other"] == {}


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("SEAMFILL_REDIS_URL", "set redis.url or redis.existingSecret"),
        ("SEAMFILL_QUESTDB_URL", "set questdb.httpUrl or questdb.existingSecret"),
        ("SEAMFILL_AUTH_WORKER_TOKEN", "set auth.tokens.worker or its key in auth.existingSecret"),
    ],
)
def test_a_missing_credential_names_the_value_to_set(missing: str, message: str) -> None:
    module = _module()
    env = {**ENV, missing: "  "}
    with pytest.raises(module.ConfigError, match=message):
        module.render(BASE, env)


def _run(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "coordinator.yaml"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(base), str(out)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc, out


def test_script_writes_a_private_config_file(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, ENV)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "the file carries tokens"
    written = yaml.safe_load(out.read_text())
    assert written["auth"]["admin"] == ["a-1"]
    assert written["key_prefix"] == "sf"


def test_script_fails_with_the_error_and_writes_nothing(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, {k: v for k, v in ENV.items() if k != "SEAMFILL_AUTH_ADMIN_TOKEN"})
    assert proc.returncode == 1
    assert proc.stderr.startswith("ConfigError: SEAMFILL_AUTH_ADMIN_TOKEN is empty")
    assert not out.exists()


@pytest.mark.parametrize("values", [(), ("trial-values.yaml",), ("monitoring-values.yaml",)])
def test_rendered_config_is_one_the_coordinator_accepts(values: tuple[str, ...]) -> None:
    from seamfill.coordinator.config import CoordinatorConfig

    cm = one(render(values), "ConfigMap", fullname("coordinator"))
    base = yaml.safe_load(cm["data"]["coordinator.yaml"])
    config = CoordinatorConfig.from_mapping(_module().render(base, ENV), env={})
    assert config.auth.enabled
    assert config.redis_url == ENV["SEAMFILL_REDIS_URL"]
    assert config.storage["default"].dsn == ENV["SEAMFILL_QUESTDB_DSN"]
    assert config.lease_ttl_ms == base["lease_ttl_ms"]
    assert set(config.datasets) == set(base["datasets"])
