"""Coordinator configuration: one frozen dataclass tree, parsed from YAML and the environment here.

Everything is validated when it is loaded; an error names the key, the value and the fix, so a
coordinator never starts with a configuration it would trip over later.

Environment overrides (applied after the file): ``SEAMFILL_REDIS_URL``, ``SEAMFILL_KEY_PREFIX``,
``SEAMFILL_LEASE_TTL_MS``, ``SEAMFILL_MAX_ATTEMPTS``, ``SEAMFILL_QUESTDB_URL`` and
``SEAMFILL_QUESTDB_DSN`` (the ``default`` storage).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seamfill.coordinator import redis_conn
from seamfill.core._sql import check_table
from seamfill.core.errors import ConfigError, InvalidArgument
from seamfill.core.types import Dataset

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(us|ms|s|m|h|d)\s*$")
_DURATION_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
}
# Names become parts of Redis keys and hash tags: no braces, no separators of ours.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_SOURCE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:\-]{0,64}$")
_KINDS = ("bars", "trades")
_TOP_KEYS = {
    "redis_url",
    "key_prefix",
    "lease_ttl_ms",
    "max_attempts",
    "auth",
    "sources",
    "storage",
    "datasets",
    "tls",
    "backoff_base_ms",
    "backoff_max_ms",
    "max_job_chunks",
}
_DATASET_KEYS = {
    "table",
    "source",
    "interval",
    "chunk_bars",
    "settle",
    "max_concurrency",
    "kind",
    "options",
    "storage",
    "symbol_pattern",
}


def parse_duration_us(value: Any, key: str) -> int:
    """Microseconds of ``"1m"``, ``"30s"``, ``"1h"``, ``"1d"``, ``"250ms"`` or an integer (us)."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} is not a duration: write e.g. 1m, 30s, 250ms")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{key}: {value} is negative: give a duration >= 0")
        return value
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return int(m.group(1)) * _DURATION_US[m.group(2)]
    raise ConfigError(
        f"{key}: {value!r} is not a duration: write e.g. 1m, 30s, 1h, 1d, 250ms "
        "or integer microseconds"
    )


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Fleet-wide rate limit of one upstream source (one token bucket in Redis)."""

    rate_per_second: float = 0.0
    """Tokens added per second; 0 means unlimited."""
    burst: int = 0
    """Bucket size; 0 means ``max(1, rate_per_second)``."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """Where a dataset's QuestDB lives."""

    http: str = "http://127.0.0.1:9000"
    """QuestDB HTTP endpoint (``/exec`` is used by Reconcile)."""
    dsn: str = "postgresql://admin:quest@127.0.0.1:8812/qdb"
    """QuestDB PGWire DSN."""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Bearer tokens per role. With none configured the coordinator is open (bind to loopback)."""

    reader: tuple[str, ...] = ()
    """May call Coverage."""
    worker: tuple[str, ...] = ()
    """May call Coverage and Leases."""
    admin: tuple[str, ...] = ()
    """May call everything."""

    @property
    def enabled(self) -> bool:
        return bool(self.reader or self.worker or self.admin)


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Optional TLS for the gRPC port."""

    cert: str = ""
    """PEM certificate chain path; empty means plaintext."""
    key: str = ""
    """PEM private key path."""

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


@dataclass(frozen=True, slots=True)
class CoordinatorConfig:
    """Everything a coordinator replica needs; every replica of a fleet shares one."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Where all state lives."""
    key_prefix: str = "sf:"
    """Every Redis key starts with it (no braces: the hash tag follows it)."""
    lease_ttl_ms: int = 30_000
    """Lease time to live; workers heartbeat at a third of it."""
    max_attempts: int = 5
    """Grants of a chunk (failures and expiries) before it is dead-lettered."""
    backoff_base_ms: int = 1_000
    """First retry delay; doubles per attempt, with jitter."""
    backoff_max_ms: int = 300_000
    """Cap of the retry delay."""
    max_job_chunks: int = 100_000
    """Largest EnsureRange, in chunks; larger requests are refused as too large."""
    auth: AuthConfig = AuthConfig()
    tls: TLSConfig = TLSConfig()
    sources: Mapping[str, SourceConfig] = field(default_factory=dict)
    storage: Mapping[str, StorageConfig] = field(
        default_factory=lambda: {"default": StorageConfig()}
    )
    datasets: Mapping[str, Dataset] = field(default_factory=dict)

    def dataset(self, name: str) -> Dataset | None:
        return self.datasets.get(name)

    def source(self, name: str) -> SourceConfig:
        return self.sources.get(name, SourceConfig())

    def storage_for(self, dataset: Dataset) -> StorageConfig:
        return self.storage.get(dataset.storage or "default") or StorageConfig()

    def with_datasets(self, datasets: Mapping[str, Dataset]) -> CoordinatorConfig:
        """A copy with ``datasets`` replacing the declared ones (tests build configs this way)."""
        return dataclasses.replace(self, datasets=dict(datasets))

    @classmethod
    def from_yaml(
        cls, path: str | Path, *, env: Mapping[str, str] | None = None
    ) -> CoordinatorConfig:
        """Load ``path``, apply environment overrides and validate."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise ConfigError(f"config file {path}: {e.strerror}: give a readable YAML file") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        return cls.from_mapping(data, env=os.environ if env is None else env)

    @classmethod
    def demo(cls, *, env: Mapping[str, str] | None = None) -> CoordinatorConfig:
        """The packaged demo configuration (``demo.ohlcv_1m`` on the synthetic source)."""
        text = (Path(__file__).parent / "demo.yaml").read_text("utf-8")
        return cls.from_mapping(yaml.safe_load(text), env=os.environ if env is None else env)

    @classmethod
    def from_mapping(cls, data: Any, *, env: Mapping[str, str] | None = None) -> CoordinatorConfig:
        """Validate a parsed YAML mapping (plus environment overrides) into a config."""
        if not isinstance(data, dict):
            raise ConfigError(
                "config: the top level must be a mapping of keys like redis_url, datasets"
            )
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ConfigError(
                f"config: unknown key(s) {sorted(unknown)}: known keys are {sorted(_TOP_KEYS)}"
            )
        data = dict(data)
        _apply_env(data, env or {})
        storage = _storage(data.get("storage"))
        datasets = _datasets(data.get("datasets"), storage)
        d = cls()
        cfg = cls(
            redis_url=_str(data, "redis_url", d.redis_url),
            key_prefix=_prefix(data.get("key_prefix", d.key_prefix)),
            lease_ttl_ms=_positive_int(data, "lease_ttl_ms", d.lease_ttl_ms, minimum=100),
            max_attempts=_positive_int(data, "max_attempts", d.max_attempts),
            backoff_base_ms=_positive_int(data, "backoff_base_ms", d.backoff_base_ms),
            backoff_max_ms=_positive_int(data, "backoff_max_ms", d.backoff_max_ms),
            max_job_chunks=_positive_int(data, "max_job_chunks", d.max_job_chunks),
            auth=_auth(data.get("auth")),
            tls=_tls(data.get("tls")),
            sources=_sources(data.get("sources")),
            storage=storage,
            datasets=datasets,
        )
        try:
            redis_conn.parse_url(cfg.redis_url)
        except redis_conn.RedisURLError as e:
            raise ConfigError(str(e)) from None
        return cfg


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, key in (("SEAMFILL_REDIS_URL", "redis_url"), ("SEAMFILL_KEY_PREFIX", "key_prefix")):
        if env.get(var):
            data[key] = env[var]
    for var, key in (
        ("SEAMFILL_LEASE_TTL_MS", "lease_ttl_ms"),
        ("SEAMFILL_MAX_ATTEMPTS", "max_attempts"),
    ):
        if env.get(var):
            try:
                data[key] = int(env[var])
            except ValueError as e:
                raise ConfigError(f"{var}={env[var]!r} is not an integer") from e
    if env.get("SEAMFILL_QUESTDB_URL") or env.get("SEAMFILL_QUESTDB_DSN"):
        storage = dict(data.get("storage") or {})
        default = dict(storage.get("default") or {})
        if env.get("SEAMFILL_QUESTDB_URL"):
            default["http"] = env["SEAMFILL_QUESTDB_URL"]
        if env.get("SEAMFILL_QUESTDB_DSN"):
            default["dsn"] = env["SEAMFILL_QUESTDB_DSN"]
        storage["default"] = default
        data["storage"] = storage


def _str(data: Mapping[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: {value!r} must be a non-empty string")
    return value


def _positive_int(
    data: Mapping[str, Any], key: str, default: int, *, minimum: int = 1, where: str = ""
) -> int:
    """``data[key]`` as an int >= ``minimum``; errors name the key's path (``where.key``)."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        path = f"{where}.{key}" if where else key
        raise ConfigError(f"{path}: {value!r} must be an integer >= {minimum}")
    return value


def _prefix(value: Any) -> str:
    if not isinstance(value, str) or not _PREFIX_RE.match(value):
        raise ConfigError(
            f"key_prefix: {value!r} may hold only letters, digits and _.:- "
            "(braces would break the Redis Cluster hash tag), at most 64 characters"
        )
    return value


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping, got {type(value).__name__}")
    return value


def _auth(value: Any) -> AuthConfig:
    data = _mapping(value, "auth")
    roles: dict[str, tuple[str, ...]] = {}
    for role in ("reader", "worker", "admin"):
        tokens = data.get(role) or []
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            raise ConfigError(f"auth.{role}: must be a list of non-empty token strings")
        roles[role] = tuple(tokens)
    unknown = set(data) - set(roles)
    if unknown:
        raise ConfigError(
            f"auth: unknown role(s) {sorted(unknown)}: roles are reader, worker, admin"
        )
    return AuthConfig(**roles)


def _tls(value: Any) -> TLSConfig:
    data = _mapping(value, "tls")
    cert, key = str(data.get("cert") or ""), str(data.get("key") or "")
    if bool(cert) != bool(key):
        raise ConfigError("tls: give both tls.cert and tls.key (PEM paths), or neither")
    for name, path in (("cert", cert), ("key", key)):
        if path and not Path(path).is_file():
            raise ConfigError(f"tls.{name}: {path!r} is not a readable file")
    return TLSConfig(cert=cert, key=key)


def _sources(value: Any) -> dict[str, SourceConfig]:
    out = {}
    for name, spec in _mapping(value, "sources").items():
        if not isinstance(name, str) or not _SOURCE_RE.match(name):
            raise ConfigError(
                f"sources: {name!r} is not a valid source name (letters, digits, _.:-)"
            )
        spec = _mapping(spec, f"sources.{name}")
        rate, burst = spec.get("rate_per_second", 0), spec.get("burst", 0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            raise ConfigError(f"sources.{name}.rate_per_second: {rate!r} must be a number >= 0")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
            raise ConfigError(f"sources.{name}.burst: {burst!r} must be an integer >= 0")
        out[name] = SourceConfig(rate_per_second=float(rate), burst=burst)
    return out


def _storage(value: Any) -> dict[str, StorageConfig]:
    out = {"default": StorageConfig()}
    for name, spec in _mapping(value, "storage").items():
        spec = _mapping(spec, f"storage.{name}")
        http = str(spec.get("http") or StorageConfig().http)
        dsn = str(spec.get("dsn") or StorageConfig().dsn)
        if not http.startswith(("http://", "https://")):
            raise ConfigError(f"storage.{name}.http: {http!r} must be an http(s):// URL")
        out[str(name)] = StorageConfig(http=http, dsn=dsn)
    return out


def _datasets(value: Any, storage: Mapping[str, StorageConfig]) -> dict[str, Dataset]:
    out = {}
    for name, spec in _mapping(value, "datasets").items():
        out[name] = _dataset(name, spec, storage)
    return out


def _dataset(name: Any, spec: Any, storage: Mapping[str, StorageConfig]) -> Dataset:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"datasets: {name!r} is not a valid dataset name: use letters, digits "
            "and _.- (e.g. binance.ohlcv_1m)"
        )
    key = f"datasets.{name}"
    spec = _mapping(spec, key)
    unknown = set(spec) - _DATASET_KEYS
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {sorted(unknown)}: known keys are {sorted(_DATASET_KEYS)}"
        )
    for required in ("table", "source", "interval"):
        if required not in spec:
            raise ConfigError(
                f"{key}.{required} is missing: every dataset needs table, source and interval"
            )
    table, source = spec["table"], spec["source"]
    try:
        check_table(table, f"{key}.table")
    except InvalidArgument as e:
        raise ConfigError(e.message) from None
    if not isinstance(source, str) or not _SOURCE_RE.match(source):
        raise ConfigError(
            f"{key}.source: {source!r} must be a source name like synthetic or ccxt:binance"
        )
    interval = parse_duration_us(spec["interval"], f"{key}.interval")
    if interval <= 0:
        raise ConfigError(f"{key}.interval must be > 0")
    chunk_bars = _positive_int(spec, "chunk_bars", 1000, where=key)
    max_conc = spec.get("max_concurrency", 0)
    if isinstance(max_conc, bool) or not isinstance(max_conc, int) or max_conc < 0:
        raise ConfigError(
            f"{key}.max_concurrency: {max_conc!r} must be an integer >= 0 (0 = no cap)"
        )
    kind = spec.get("kind", "bars")
    if kind not in _KINDS:
        raise ConfigError(f"{key}.kind: {kind!r} must be one of {list(_KINDS)}")
    store = str(spec.get("storage") or "")
    if store and store not in storage:
        raise ConfigError(
            f"{key}.storage: {store!r} is not declared under storage: known are {sorted(storage)}"
        )
    options = _mapping(spec.get("options"), f"{key}.options")
    pattern = _pattern(spec.get("symbol_pattern", ""), f"{key}.symbol_pattern")
    return Dataset(
        name=name,
        table=table,
        source=source,
        interval_us=interval,
        chunk_bars=chunk_bars,
        settle_us=parse_duration_us(spec.get("settle", 0), f"{key}.settle"),
        max_concurrency=max_conc,
        kind=kind,
        storage=store,
        options={str(k): str(v) for k, v in options.items()},
        symbol_pattern=pattern,
    )


def _pattern(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: {value!r} must be a regular expression string")
    try:
        re.compile(value)
    except re.error as e:
        raise ConfigError(f"{key}: {value[:60]!r} is not a regular expression ({e})") from None
    return value
