"""Conformance of a bar frame: rules, severities, a report with per-rule counts (the rollups).

Each rule counts the rows it flags; each has a severity (``error`` blocks the read unless
``partial_ok``; ``warning`` is reported; ``ignore`` skips the rule). Before the rules count, the
input is prepared (:mod:`~seamfill.sdk.quality.schema`: the caller's column types, timestamps to
UTC in an explicit unit, ``inf`` to NaN when asked). Normalisation (sort by time, drop duplicate
rows keeping the last) runs after the rules have counted, so the report describes the data as it
arrived; duplicates are reported both ways, rows dropped and keys affected. ``kind`` selects the
rules: bars, or trades and quotes (:mod:`~seamfill.sdk.quality.ticks`). Pure: pandas and numpy
only, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, overload

import numpy as np
import pandas as pd

from seamfill.core.errors import ConfigError, ConformanceError
from seamfill.sdk.quality.ticks import count_duplicates, duplicate_keys, tick_rule

VERSION = "2"
"""The rule set's version, recorded in every materialized artifact's manifest."""
BAR_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
RULES = (
    "schema",
    "order",
    "duplicates",
    "grid",
    "gaps",
    "ohlc",
    "non_finite",
    "crossed",
    "negative_size",
    "wide_spread",
)
KIND_RULES: dict[str, tuple[str, ...]] = {
    "bars": ("schema", "order", "duplicates", "grid", "gaps", "ohlc", "non_finite"),
    "trades": ("schema", "order", "duplicates", "non_finite", "negative_size"),
    "quotes": (
        "schema",
        "order",
        "duplicates",
        "non_finite",
        "crossed",
        "negative_size",
        "wide_spread",
    ),
}
"""The rules each data kind runs; the others count 0."""


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    IGNORE = "ignore"


DEFAULT_SEVERITIES: dict[str, Severity] = {
    "schema": Severity.ERROR,
    "order": Severity.ERROR,
    "duplicates": Severity.ERROR,
    "grid": Severity.ERROR,
    # Holes inside a result are normal for closed markets and partial reads; they are listed as
    # gaps in the metadata already, so they do not block ordinary data.
    "gaps": Severity.WARNING,
    "ohlc": Severity.ERROR,
    "non_finite": Severity.ERROR,
    "crossed": Severity.ERROR,
    "negative_size": Severity.ERROR,
    # A wide spread is a market fact as often as a data error.
    "wide_spread": Severity.WARNING,
}


@dataclass(frozen=True, slots=True)
class ConformanceReport:
    """Per-rule counts of flagged rows, with the severity each rule ran at."""

    counts: Mapping[str, int]
    severities: Mapping[str, Severity]
    rows_in: int = 0
    rows_out: int = 0
    details: Mapping[str, str] = field(default_factory=dict)
    duplicate_rows: int = 0
    """Rows normalisation drops as duplicates (every copy of a key but the last)."""
    duplicate_keys: int = 0
    """Distinct keys that occur more than once."""

    @property
    def rollups(self) -> dict[str, int]:
        """Rule -> flagged rows, for the rules that flagged any."""
        return {r: n for r, n in self.counts.items() if n}

    @property
    def errors(self) -> dict[str, int]:
        return {r: n for r, n in self.rollups.items() if self.severities[r] is Severity.ERROR}

    @property
    def warnings(self) -> dict[str, int]:
        return {r: n for r, n in self.rollups.items() if self.severities[r] is Severity.WARNING}

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "errors": self.errors,
            "warnings": self.warnings,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "details": dict(self.details),
            "duplicate_rows": self.duplicate_rows,
            "duplicate_keys": self.duplicate_keys,
        }


def _ts_us(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.int64]]:
    ts = frame["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        return np.asarray(ts.dt.as_unit("us").astype("int64"), dtype=np.int64)
    return np.asarray(ts, dtype=np.int64)


def sorted_unique(ts: np.ndarray[Any, np.dtype[np.int64]]) -> np.ndarray[Any, Any]:
    """Sorted distinct values; linear when ``ts`` is already sorted (the usual case)."""
    if len(ts) < 2:
        return ts
    step = np.diff(ts)
    if (step < 0).any():
        ts = np.sort(ts)
        step = np.diff(ts)
    if step.all():  # no duplicates (the usual case): no copy of the column
        return ts
    return ts[np.concatenate(([True], step != 0))]


def strictly_increasing(frame: pd.DataFrame) -> bool:
    ts = _ts_us(frame)
    return bool(len(ts) < 2 or (np.diff(ts) > 0).all())


def check_schema(frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
    problems = []
    for col in BAR_COLUMNS:
        if col not in frame.columns:
            problems.append(f"missing column {col!r}")
        elif col == "ts" and not pd.api.types.is_datetime64_any_dtype(frame[col].dtype):
            problems.append(f"ts has dtype {frame[col].dtype}, expected datetime64[us, UTC]")
        elif col in PRICE_COLUMNS and not pd.api.types.is_float_dtype(frame[col].dtype):
            problems.append(f"{col} has dtype {frame[col].dtype}, expected float64")
    return len(problems), "; ".join(problems)


def check_order(frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
    ts = _ts_us(frame)
    return int(np.count_nonzero(ts[1:] < ts[:-1])), ""


def check_duplicates(frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
    if strictly_increasing(frame):
        return 0, ""  # no two rows share a time, so none share (time, symbol)
    keys = ["ts", "symbol"] if "symbol" in frame.columns else ["ts"]
    return int(frame.duplicated(subset=keys).sum()), ""


def check_grid(frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
    return int(np.count_nonzero(_ts_us(frame) % interval_us)), ""


def check_gaps(frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
    """Missing bars between the first and the last bar of the frame."""
    ts = sorted_unique(_ts_us(frame))
    if len(ts) < 2:
        return 0, ""
    expected = (int(ts[-1]) - int(ts[0])) // interval_us + 1
    on_grid = int(np.count_nonzero((ts - ts[0]) % interval_us == 0))
    return max(0, expected - on_grid), ""


def check_ohlc(frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
    if not all(c in frame.columns for c in PRICE_COLUMNS):
        return 0, ""
    o, h, lo, c, v = (_floats(frame[n]) for n in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        bad = (lo > np.minimum(o, c)) | (h < np.maximum(o, c)) | (lo > h) | (v < 0)
    return int(np.count_nonzero(bad)), ""


def _floats(col: pd.Series) -> np.ndarray[Any, Any]:
    """The column as float64 values, NaN for missing; a view when it is float64 already."""
    if col.dtype == np.float64:
        return np.asarray(col.to_numpy())
    return np.asarray(col.to_numpy(dtype=np.float64, na_value=np.nan))


def check_non_finite(frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
    cols = [c for c in PRICE_COLUMNS if c in frame.columns]
    if not cols:
        return 0, ""
    # One column at a time: a 2-D copy of every price would cost most of the frame again.
    bad = np.zeros(len(frame), dtype=bool)
    for col in cols:
        bad |= ~np.isfinite(_floats(frame[col]))
    return int(np.count_nonzero(bad)), ""


CHECKS: dict[str, Callable[[pd.DataFrame, int], tuple[int, str]]] = {
    "schema": check_schema,
    "order": check_order,
    "duplicates": check_duplicates,
    "grid": check_grid,
    "gaps": check_gaps,
    "ohlc": check_ohlc,
    "non_finite": check_non_finite,
}


def normalize(frame: pd.DataFrame, kind: str = "bars") -> pd.DataFrame:
    """Sorted by time, one row per key (``ts, symbol``; trades add ``trade_id``) keeping the
    last, index 0..n-1."""
    if "ts" not in frame.columns or frame.empty:
        return frame.reset_index(drop=True)
    if strictly_increasing(frame):
        return frame if isinstance(frame.index, pd.RangeIndex) else frame.reset_index(drop=True)
    keys = duplicate_keys(frame, kind)
    out = frame
    if not out["ts"].is_monotonic_increasing:
        out = out.sort_values("ts", kind="stable")
    if out.duplicated(subset=keys).any():
        out = out.drop_duplicates(subset=keys, keep="last")
    return out.reset_index(drop=True)


class _PartialOkAccess:
    """``ConformancePipeline.partial_ok(True)`` builds a pipeline; ``pipe.partial_ok`` is a bool."""

    @overload
    def __get__(self, obj: None, owner: type[ConformancePipeline]) -> Callable[..., Any]: ...

    @overload
    def __get__(self, obj: ConformancePipeline, owner: type[ConformancePipeline]) -> bool: ...

    def __get__(self, obj: ConformancePipeline | None, owner: type[ConformancePipeline]) -> Any:
        if obj is None:

            def build(flag: bool = True, **kwargs: Any) -> ConformancePipeline:
                return owner(allow_partial=flag, **kwargs)

            return build
        return obj.allow_partial


@dataclass(frozen=True, slots=True)
class ConformancePipeline:
    """The rules a read's frame passes through, each at a severity.

    ``ConformancePipeline.partial_ok(True)`` is the short form of
    ``ConformancePipeline(allow_partial=True)``; on an instance, ``partial_ok`` reads the flag.
    """

    severities: Mapping[str, Severity] = field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    """Rule name -> severity; rules not named keep their default."""
    allow_partial: bool = False
    """Report error-severity violations instead of raising :class:`ConformanceError`."""
    normalize: bool = True
    """Sort by time and drop duplicate bars after the rules have counted."""
    kind: str = "bars"
    """``bars``, ``trades`` or ``quotes``: which rules run (:data:`KIND_RULES`)."""
    dtypes: Mapping[str, str] = field(default_factory=dict)
    """The caller's schema: column -> ``float64``/``int64``/``string``/``bool``/``datetime``,
    cast before the rules count (an int ``close`` becomes float)."""
    time_unit: str | None = None
    """Unit of integer epoch timestamps (``s``, ``ms``, ``us``, ``ns``); never guessed here."""
    inf_to_nan: bool = False
    """Turn ``±inf`` into NaN before the rules count (the ``non_finite`` rule still sees NaN)."""
    max_spread_bps: float = 500.0
    """The ``wide_spread`` rule's bound, in basis points of the mid."""

    partial_ok = _PartialOkAccess()

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_SEVERITIES)
        for rule, level in dict(self.severities).items():
            if rule not in RULES:
                raise ConfigError(
                    f"conformance.severities.{rule} is not a rule: use one of {', '.join(RULES)}"
                )
            merged[rule] = _severity(rule, level)
        object.__setattr__(self, "severities", merged)
        if self.kind not in KIND_RULES:
            raise ConfigError(
                f"conformance.kind = {self.kind!r} is not one of {', '.join(KIND_RULES)}"
            )
        from seamfill.sdk.quality.schema import check_options

        object.__setattr__(self, "dtypes", check_options(self.dtypes, self.time_unit))

    def prepare(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
        """The frame with the caller's types, UTC timestamps and (if asked) no ``inf``."""
        from seamfill.sdk.quality.schema import prepare

        out, _, details = prepare(
            frame, dtypes=self.dtypes, time_unit=self.time_unit, inf_to_nan=self.inf_to_nan
        )
        return out, details

    def _rule(self, rule: str, frame: pd.DataFrame, interval_us: int) -> tuple[int, str]:
        found = (
            None if self.kind == "bars" else tick_rule(rule, frame, self.kind, self.max_spread_bps)
        )
        return found if found is not None else CHECKS[rule](frame, interval_us)

    def check(self, frame: pd.DataFrame, interval_us: int) -> ConformanceReport:
        """Count every rule's violations (on the prepared frame) without raising."""
        return self._count(*self.prepare(frame), interval_us)

    def _count(
        self, frame: pd.DataFrame, prepared: dict[str, str], interval_us: int
    ) -> ConformanceReport:
        counts: dict[str, int] = {}
        details: dict[str, str] = dict(prepared)
        schema_broken = False
        active = KIND_RULES[self.kind]
        for rule in RULES:
            severity = self.severities[rule]
            if (
                rule not in active
                or severity is Severity.IGNORE
                or (schema_broken and rule != "schema")
            ):
                counts[rule] = 0
                continue
            n, detail = (
                self._rule(rule, frame, interval_us) if len(frame) or rule == "schema" else (0, "")
            )
            counts[rule] = n
            if detail:
                details[rule] = detail
            # Later rules read typed columns; after a broken schema their counts would mislead.
            schema_broken = rule == "schema" and n > 0
        dup_rows, dup_keys = count_duplicates(frame, self.kind) if counts["duplicates"] else (0, 0)
        return ConformanceReport(
            counts, dict(self.severities), len(frame), len(frame), details, dup_rows, dup_keys
        )

    def run(self, frame: pd.DataFrame, interval_us: int) -> tuple[pd.DataFrame, ConformanceReport]:
        """Prepare, check, normalise, and raise on an error-severity violation unless
        ``partial_ok``."""
        frame, prepared = self.prepare(frame)
        report = self._count(frame, prepared, interval_us)
        out = (
            normalize(frame, self.kind) if self.normalize and not report.counts["schema"] else frame
        )
        report = replace(report, rows_out=len(out))
        if report.errors and not self.allow_partial:
            listing = ", ".join(
                f"{r}={n}" + (f" [{report.details[r]}]" if r in report.details else "")
                for r, n in report.errors.items()
            )
            raise ConformanceError(
                f"conformance failed ({listing}); fix the data, or pass partial_ok=True to "
                "accept it with the report",
                report,
            )
        return out, report

    @classmethod
    def from_mapping(cls, data: Any, where: str = "conformance") -> ConformancePipeline:
        """From YAML: a preset name, or ``{preset, partial_ok, normalize, severities}``."""
        if isinstance(data, ConformancePipeline):
            return data
        if isinstance(data, str):
            return cls.preset(data)
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must be a mapping or a preset name (strict, tolerant)")
        data = dict(data)
        base = cls.preset(data.pop("preset")) if "preset" in data else cls()
        allowed = {
            "partial_ok",
            "normalize",
            "severities",
            "kind",
            "dtypes",
            "time_unit",
            "inf_to_nan",
            "max_spread_bps",
        }
        for key in data:
            if key not in allowed:
                raise ConfigError(
                    f"{where}.{key} is not a setting: use one of "
                    f"{', '.join(sorted(allowed | {'preset'}))}"
                )
        sev = dict(base.severities) | dict(data.get("severities") or {})
        return cls(
            severities=sev,
            allow_partial=_bool(data.get("partial_ok", base.allow_partial), f"{where}.partial_ok"),
            normalize=_bool(data.get("normalize", base.normalize), f"{where}.normalize"),
            kind=str(data.get("kind", base.kind)),
            dtypes=dict(data.get("dtypes") or base.dtypes),
            time_unit=data.get("time_unit", base.time_unit),
            inf_to_nan=_bool(data.get("inf_to_nan", base.inf_to_nan), f"{where}.inf_to_nan"),
            max_spread_bps=float(data.get("max_spread_bps", base.max_spread_bps)),
        )

    @classmethod
    def preset(cls, name: str) -> ConformancePipeline:
        """A shipped preset (``strict`` or ``tolerant``), read only when asked for."""
        from seamfill.sdk.presets import load_preset

        section = load_preset(name).get("conformance", {})
        return cls.from_mapping(section, where=f"preset {name}: conformance")


def _severity(rule: str, level: Any) -> Severity:
    if isinstance(level, Severity):
        return level
    try:
        return Severity(str(level).lower())
    except ValueError:
        raise ConfigError(
            f"conformance.severities.{rule} = {level!r} is not one of error, warning, ignore"
        ) from None


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r} is not a boolean: write true or false")
    return value
