"""SeamlessSettings: the provider's whole configuration in one frozen dataclass.

Parsed in one place: :meth:`SeamlessSettings.from_yaml` reads the ``seamless:`` section of a YAML
file (then applies ``SEAMFILL_*`` overrides), :meth:`SeamlessSettings.from_env` reads only the
environment. An unknown key or a bad value fails at construction, naming the key and the fix.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from seamfill.core.errors import ConfigError
from seamfill.sdk.context import ComputeContext
from seamfill.sdk.quality.conformance import ConformancePipeline
from seamfill.sdk.sla import SLAPolicy


class Strategy(enum.Enum):
    """What a read does about gaps (DESIGN §6)."""

    FAIL_FAST = "fail_fast"
    """Raise :class:`~seamfill.core.errors.MissingData` listing the gaps; enqueue nothing."""
    AUTO_BACKFILL = "auto_backfill"
    """Ask for the gaps to be filled, wait within the SLA, then read."""
    PARTIAL_FILL = "partial_fill"
    """Return what is there now with the gaps listed; the fill runs in the background."""
    SEAMLESS = "seamless"
    """Auto-backfill; on the deadline, a partial result with the gaps; live data for the edge."""


@dataclass(frozen=True, slots=True)
class CoordinatorAddress:
    """A parsed ``coordinator_url``: the gRPC target and whether to use TLS."""

    target: str
    tls: bool


def parse_coordinator_url(url: str, key: str = "coordinator_url") -> CoordinatorAddress:
    """``grpc://h:p`` or ``h:p`` (plaintext), ``grpcs://h:p`` or ``https://h:p`` (TLS)."""
    text = url.strip()
    if "://" not in text:
        text = "grpc://" + text
    u = urlparse(text)
    schemes = {"grpc": False, "http": False, "grpcs": True, "https": True}
    if u.scheme not in schemes:
        raise ConfigError(
            f"{key} = {url!r} has scheme {u.scheme!r}: use grpc://, grpcs://, "
            "https:// or plain host:port"
        )
    try:
        port = u.port
    except ValueError:
        port = None
    if not u.hostname or (u.path not in ("", "/")):
        raise ConfigError(
            f"{key} = {url!r} is not an address: write it like "
            "grpc://127.0.0.1:50051 or coordinator:50051"
        )
    if port is None:
        port = 443 if schemes[u.scheme] else 50051
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return CoordinatorAddress(f"{host}:{port}", schemes[u.scheme])


@dataclass(frozen=True, slots=True)
class SeamlessSettings:
    """Everything a :class:`~seamfill.sdk.provider.SeamlessProvider` needs."""

    coordinator_url: str | None = None
    """Coordinator address (``grpc://``, ``host:port``, ``grpcs://``, ``https://``); ``None``
    means no coordinator: gaps are filled inline by the provider's own fetcher."""
    coordinator_token: str | None = None
    """Bearer token (reader role; worker role too if the provider takes leases)."""
    questdb_url: str = "http://127.0.0.1:9000"
    """QuestDB's HTTP endpoint, used for reads (and for inline ILP writes)."""
    questdb_dsn: str | None = None
    """QuestDB's PGWire DSN; when given without ``questdb_url`` its host is used for HTTP."""
    dataset: str | None = None
    """Dataset of a ``node_id`` that names only a symbol."""
    table: str | None = None
    """QuestDB table of that dataset when no coordinator declares it (inline mode)."""
    interval: str = "1m"
    """Bar interval of that dataset in inline mode (``"1m"``, ``"1h"``, seconds...)."""
    settle_ms: int = 0
    """Settle margin after the forming bar in inline mode."""
    strategy: Strategy = Strategy.SEAMLESS
    """See :class:`Strategy`."""
    sla: SLAPolicy = field(default_factory=SLAPolicy)
    """Per-stage deadlines; see :class:`~seamfill.sdk.sla.SLAPolicy`."""
    conformance: ConformancePipeline = field(default_factory=ConformancePipeline)
    """Rules and severities; see :class:`~seamfill.sdk.quality.conformance.ConformancePipeline`."""
    partial_ok: bool = False
    """Accept data with error-severity conformance findings (reported, not raised)."""
    fingerprint: bool = True
    """Compute a fingerprint for every complete result."""
    publish_fingerprint: bool = False
    """Record each complete result's fingerprint at the coordinator for audit."""
    preview_fingerprint: bool = False
    """Also fingerprint partial results (marked preview)."""
    early_fingerprint: bool = False
    """Fingerprint the rows as read, before conformance normalisation."""
    cache_bytes: int = 64 * 1024 * 1024
    """Byte budget of the in-process cache of settled, fully covered reads (0 disables it)."""
    requested_by: str = "seamfill-sdk"
    """Who asks, as recorded on jobs the provider creates."""
    take_leases: bool = True
    """With a coordinator and a fetcher: help fill this read's gaps by taking leases."""
    context: ComputeContext | None = None
    """Default execution context of every read (``world_id``, ``execution_domain``, ``as_of``);
    ``fetch(..., context=...)`` overrides it. See :class:`~seamfill.sdk.context.ComputeContext`."""
    cache_ttl_ms: int | None = None
    """How long a cached read may answer (``None``: until evicted by the byte budget)."""
    fetcher: str | None = None
    """Fetcher plugin (a ``seamfill.fetchers`` entry point such as ``ccxt`` or ``synthetic``) the
    provider fills gaps with when it is given none."""
    fetcher_options: Mapping[str, Any] = field(default_factory=dict)
    """Options of that plugin's constructor (e.g. ``{exchange: binance}`` for ccxt)."""
    profile: str = "default"
    """Deployment profile: ``default``; ``prod`` (a coordinator must be configured and answer
    SERVING when the provider is made, or construction raises); ``dev`` (may run on an
    in-memory provider with no servers at all, see :func:`seamfill.sdk.memory.open_provider`)."""
    on_coordinator_unavailable: str = "degrade"
    """With a coordinator configured but not reachable: ``degrade`` (serve what storage has, gaps
    listed) or ``inline`` (fill the gaps in this process with the provider's fetcher, single
    flight, leases skipped; said in the log and the result's reason)."""
    artifacts_dir: str | None = None
    """A directory of materialized artifacts (``seamfill materialize``) that reads are served
    from when one holds the series, range and as-of asked for."""
    max_concurrent_exports: int = 2
    """Concurrent ``/exp`` exports this process sends to one QuestDB (QuestDB's own default cap
    is 2 on a 2-core host); further reads queue here, or go over PGWire when small."""
    pgwire_max_rows: int = 20_000
    """Reads of at most this many bars go over PGWire when HTTP export is saturated; larger ones
    wait for HTTP. PGWire (binary, a Python object per value) measured 0.9-1.5x the time of /exp
    Parquet at 1k bars, 3x at 10k and 6-12x from 100k (``make bench``, sdk_read ``paths``),
    while a saturated export frees within a backoff of tens of ms. 0 never uses PGWire."""
    max_fetch_rows: int = 20_000_000
    """A ``fetch`` of a range that may hold more bars fails early: read it with ``iter_batches``."""
    max_fetch_bytes: int = 2 * 1024 * 1024 * 1024
    """The same budget in frame bytes (48 per bar)."""
    allow_plaintext_token: bool = False
    """Send ``coordinator_token`` without TLS to a coordinator that is not on this machine
    (refused otherwise; a warning is logged when allowed)."""
    time_unit: str = "us"
    """Unit of integer times passed to reads (``s``, ``ms``, ``us`` or ``ns``): integers are
    never read by their size. Other forms: see :mod:`seamfill.core.timeconv`."""

    def __post_init__(self) -> None:
        self._check_types()
        if self.coordinator_url is not None:
            parse_coordinator_url(self.coordinator_url)
        from seamfill.core.timeconv import interval_to_us

        try:
            interval_to_us(self.interval)
        except Exception as e:
            raise ConfigError(f"interval = {self.interval!r} is not a bar interval: {e}") from e
        u = urlparse(self.questdb_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(
                f"questdb_url = {self.questdb_url!r} is not an http(s)://host:port address: "
                "give QuestDB's HTTP endpoint, e.g. http://127.0.0.1:9000"
            )
        from seamfill.core.timeconv import UNITS

        if self.time_unit not in UNITS:
            raise ConfigError(
                f"time_unit = {self.time_unit!r} is not a unit: use one of {', '.join(UNITS)}"
            )
        self._check_profile()
        if self.cache_bytes < 0 or self.settle_ms < 0 or self.pgwire_max_rows < 0:
            raise ConfigError("cache_bytes, settle_ms and pgwire_max_rows must be >= 0")
        for key in ("max_concurrent_exports", "max_fetch_rows", "max_fetch_bytes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} = {getattr(self, key)!r} must be a positive integer")

    def _check_profile(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"profile = {self.profile!r} is not one of {', '.join(PROFILES)}")
        if self.on_coordinator_unavailable not in ("degrade", "inline"):
            raise ConfigError(
                f"on_coordinator_unavailable = {self.on_coordinator_unavailable!r} is not one "
                "of degrade, inline"
            )
        if self.profile == "prod" and not self.coordinator_url:
            raise ConfigError(
                "profile = 'prod' needs coordinator_url: set it (SEAMFILL_COORDINATOR), or use "
                "profile default or dev"
            )

    def _check_read_field(self, name: str, value: Any) -> None:
        if name == "fetcher_options":
            if not isinstance(value, Mapping):
                raise ConfigError(f"fetcher_options = {value!r} is not a mapping")
            object.__setattr__(self, "fetcher_options", dict(value))
        elif name == "context":
            object.__setattr__(self, "context", ComputeContext.from_value(value))
        elif value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise ConfigError(
                f"{name} = {value!r} is not a positive int of milliseconds: give e.g. "
                "60000, or null for no TTL"
            )

    def _check_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "strategy" and not isinstance(value, Strategy):
                object.__setattr__(self, "strategy", _strategy(value))
            elif f.name == "sla" and not isinstance(value, SLAPolicy):
                object.__setattr__(self, "sla", SLAPolicy.from_mapping(value))
            elif f.name in ("fetcher_options", "context", "cache_ttl_ms"):
                self._check_read_field(f.name, value)
            elif f.name == "conformance" and not isinstance(value, ConformancePipeline):
                object.__setattr__(self, "conformance", ConformancePipeline.from_mapping(value))
            elif f.name == "interval" and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, "interval", f"{value}s")
            elif f.type in ("bool",) and not isinstance(value, bool):
                raise ConfigError(f"{f.name} = {value!r} is not a boolean: write true or false")
            elif f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{f.name} = {value!r} is not an integer")
            elif f.type in ("str", "str | None") and not (
                isinstance(value, str) or (value is None and "None" in f.type)
            ):
                raise ConfigError(f"{f.name} = {value!r} is not a string")

    @property
    def coordinator(self) -> CoordinatorAddress | None:
        """The parsed coordinator address, or ``None`` in inline mode."""
        if not self.coordinator_url:
            return None
        return parse_coordinator_url(self.coordinator_url)

    @property
    def storage_url(self) -> str:
        """The HTTP endpoint reads go to (from ``questdb_dsn``'s host when only it is set)."""
        if self.questdb_dsn and self.questdb_url == _DEFAULT_QUESTDB_URL:
            host = urlparse(self.questdb_dsn).hostname or "127.0.0.1"
            return f"http://{host}:9000"
        return self.questdb_url

    @property
    def pgwire_dsn(self) -> str:
        """The PGWire DSN reads fall back to: ``questdb_dsn``, else QuestDB's default on the
        storage host (port 8812, the stock admin user)."""
        if self.questdb_dsn:
            return self.questdb_dsn
        host = urlparse(self.storage_url).hostname or "127.0.0.1"
        return f"postgresql://admin:quest@{host}:8812/qdb"

    @property
    def conformance_pipeline(self) -> ConformancePipeline:
        """The pipeline with ``partial_ok`` folded in."""
        if self.partial_ok and not self.conformance.allow_partial:
            return replace(self.conformance, allow_partial=True)
        return self.conformance

    def with_overrides(self, **changes: Any) -> SeamlessSettings:
        """A copy with ``changes`` applied (validated like construction)."""
        known = {f.name for f in fields(self)}
        for key in changes:
            if key not in known:
                raise ConfigError(f"{key} is not a setting: use one of {', '.join(sorted(known))}")
        return replace(self, **changes)

    @classmethod
    def from_preset(
        cls, name: str, *, presets_file: str | Path | None = None, **overrides: Any
    ) -> SeamlessSettings:
        """A named preset (shipped, e.g. ``ccxt.questdb.ohlcv``, or from the user's presets
        file) with ``overrides`` on top. The reference design's option names are understood:
        ``exchange_id`` (the ccxt exchange), ``timeframe`` (the interval)."""
        return cls.from_mapping({"preset": name, **overrides}, presets_file=presets_file)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        where: str = "seamless",
        *,
        presets_file: str | Path | None = None,
    ) -> SeamlessSettings:
        """From the ``seamless:`` mapping; unknown keys fail naming the key. A ``preset`` key
        starts from that preset (see :meth:`from_preset`)."""
        data = _preset_base(dict(data), where, presets_file)
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"{where}.{key} is not a setting: use one of {', '.join(sorted(known))}"
                )
        try:
            return cls(**dict(data))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e.message}") from None

    @classmethod
    def from_yaml(
        cls, path: str | Path, *, env: Mapping[str, str] | None = None, section: str = "seamless"
    ) -> SeamlessSettings:
        """The ``seamless:`` section of a YAML file, then ``SEAMFILL_*`` overrides from ``env``
        (``os.environ`` when not given; pass ``{}`` to ignore the environment)."""
        import yaml

        try:
            text = Path(path).read_text("utf-8")
        except OSError as e:
            raise ConfigError(f"settings file {path} cannot be read: {e}") from e
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"settings file {path} is not valid YAML: {e}") from e
        if not isinstance(doc, dict) or not isinstance(doc.get(section, {}), dict):
            raise ConfigError(f"{path}: the {section!r} section must be a mapping")
        data = dict(doc.get(section) or {})
        data.update(env_overrides(os.environ if env is None else env))
        return cls.from_mapping(data, where=f"{path}: {section}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SeamlessSettings:
        """Settings from ``SEAMFILL_*`` variables; ``SEAMFILL_CONFIG`` names a YAML file whose
        ``seamless:`` section they override."""
        env = os.environ if env is None else env
        if env.get("SEAMFILL_CONFIG"):
            return cls.from_yaml(env["SEAMFILL_CONFIG"], env=env)
        return cls.from_mapping(env_overrides(env), where="env")


_DEFAULT_QUESTDB_URL = "http://127.0.0.1:9000"
PROFILES = ("default", "dev", "prod")


def _preset_base(
    data: dict[str, Any], where: str, presets_file: str | Path | None
) -> dict[str, Any]:
    """``data`` on top of the preset it names (if any), with the reference option names mapped."""
    if "exchange_id" in data:
        options = dict(data.get("fetcher_options") or {})
        options["exchange"] = data.pop("exchange_id")
        data["fetcher_options"] = options
    if "timeframe" in data:
        data["interval"] = data.pop("timeframe")
    name = data.pop("preset", None)
    if name is None:
        return data
    from seamfill.sdk.presets import load_preset

    try:
        preset = load_preset(str(name), presets_file)
    except ConfigError as e:
        raise ConfigError(f"{where}.preset: {e.message}") from None
    base: dict[str, Any] = dict(preset.get("seamless") or {})
    for section in ("sla", "conformance"):
        if section in preset:
            base[section] = preset[section]
    if "fetcher_options" in data and "fetcher_options" in base:
        data["fetcher_options"] = {**base["fetcher_options"], **data["fetcher_options"]}
    return base | data


_BOOL_TEXT = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
# SEAMFILL_COORDINATOR is the address every seamfill process reads; the others are the settings'
# own names, upper-cased.
_ENV_ALIASES = {"SEAMFILL_COORDINATOR": "coordinator_url", "SEAMFILL_TOKEN": "coordinator_token"}
_SLA_ENV = ("total", "storage", "backfill", "live")


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings that ``SEAMFILL_*`` variables in ``env`` set, typed."""
    types = {f.name: str(f.type) for f in fields(SeamlessSettings)}
    out: dict[str, Any] = {}
    for var, key in _ENV_ALIASES.items():
        if env.get(var):
            out[key] = env[var]
    for key, typ in types.items():
        var = "SEAMFILL_" + key.upper()
        if var not in env or key in ("sla", "conformance", "context"):
            continue
        out[key] = _env_value(var, env[var], typ)
    sla: dict[str, Any] = {}
    if env.get("SEAMFILL_SLA_PRESET"):
        sla["preset"] = env["SEAMFILL_SLA_PRESET"]
    for stage in _SLA_ENV:
        var = f"SEAMFILL_SLA_{stage.upper()}_DEADLINE_MS"
        if var in env:
            sla[f"{stage}_deadline_ms"] = _env_value(var, env[var], "int")
    if env.get("SEAMFILL_SLA_ON_BREACH"):
        sla["on_breach"] = env["SEAMFILL_SLA_ON_BREACH"]
    if sla:
        out["sla"] = sla
    if env.get("SEAMFILL_PRESET"):
        out["preset"] = env["SEAMFILL_PRESET"]
    if env.get("SEAMFILL_CONFORMANCE_PRESET"):
        out["conformance"] = {"preset": env["SEAMFILL_CONFORMANCE_PRESET"]}
    return out


def _env_value(var: str, raw: str, typ: str) -> Any:
    if typ == "bool":
        if raw.strip().lower() not in _BOOL_TEXT:
            raise ConfigError(f"{var} = {raw!r} is not a boolean: write true or false")
        return _BOOL_TEXT[raw.strip().lower()]
    if typ in ("int", "int | None"):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{var} = {raw!r} is not an integer") from None
    return raw


def _strategy(value: Any) -> Strategy:
    text = str(getattr(value, "value", value)).strip().lower()
    try:
        return Strategy(text)
    except ValueError:
        choices = ", ".join(s.value for s in Strategy)
        raise ConfigError(f"strategy = {value!r} is not one of {choices}") from None
