"""What a read returns: the frame and the metadata that explains it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from seamfill.core.timeconv import duration_text, us_to_text
from seamfill.core.types import Fingerprint, Series, TimeRange
from seamfill.sdk.quality.conformance import ConformanceReport
from seamfill.sdk.quality.fingerprint import as_dict

_SHOWN_RANGES = 5


def _span(r: TimeRange) -> str:
    return f"[{us_to_text(r.start_us)}, {us_to_text(r.end_us)}) {duration_text(r.duration_us)}"


def _spans(ranges: tuple[TimeRange, ...]) -> str:
    if not ranges:
        return "none"
    text = ", ".join(_span(r) for r in ranges[:_SHOWN_RANGES])
    more = len(ranges) - _SHOWN_RANGES
    return text + (f" … and {more} more" if more > 0 else "")


@dataclass(frozen=True, slots=True, repr=False)
class SeamlessMeta:
    """How a read was served. Fields keep microseconds (ranges half-open); ``repr`` and ``str``
    show ISO times and durations, and ``meta["start"]``, ``meta["gaps"]``, ``dict(meta)`` read
    the same in plain data (:meth:`readable`; raw fields answer by name too)."""

    series: Series
    range: TimeRange
    """The grid-aligned range the read covers (bars with ``start <= ts < end``)."""
    interval_us: int
    covered: tuple[TimeRange, ...]
    """Parts of ``range`` served from settled storage."""
    gaps: tuple[TimeRange, ...]
    """Parts of the settled history with no rows served (not filled within the deadline)."""
    coverage_ratio: float
    staleness_us: int
    """How far the newest row's bar end lies behind now (0 when the edge came from live)."""
    settled_until_us: int
    strategy: str
    source: str = "storage"
    """``cache``, ``storage``, ``storage+live`` or ``artifact``."""
    downgraded: bool = False
    reason: str = ""
    """Why the result was downgraded (which deadline, or the coordinator being away)."""
    degraded: bool = False
    """The coordinator could not be asked: coverage is what storage shows."""
    job_id: str = ""
    live_rows: int = 0
    conformance: ConformanceReport | None = None
    fingerprint: Fingerprint | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    hold: bool = False
    """A coverage, freshness or as-of bound was breached and the policy says hold: the frame
    carries no rows; ``breaches`` says which bound."""
    breaches: tuple[str, ...] = ()
    """The bounds breached: ``coverage_breach``, ``freshness_breach``, ``as_of_regression``."""
    context: dict[str, Any] = field(default_factory=dict)
    """The execution context of the read (``world_id``, ``execution_domain``, ``as_of_us``)."""
    artifact: str = ""
    """The artifact directory the rows were served from, when ``source`` is ``artifact``."""
    storage_path: str = ""
    """How storage was read: ``http`` (``/exp`` Parquet), ``pgwire``, ``cache``, or ``""``."""
    storage_retries: int = 0
    """Attempts QuestDB turned away as busy (429/503, refused) before the read got through."""

    @property
    def complete(self) -> bool:
        return not self.gaps

    @property
    def partial(self) -> bool:
        return bool(self.gaps)

    def __repr__(self) -> str:
        gaps = len(self.gaps)
        extra = f", downgraded: {self.reason}" if self.downgraded else ""
        return (
            f"<SeamlessMeta {self.series} [{us_to_text(self.range.start_us)}, "
            f"{us_to_text(self.range.end_us)}) {duration_text(self.interval_us)} bars, "
            f"{self.coverage_ratio:.1%} covered, {gaps} gap{'s' if gaps != 1 else ''}, "
            f"stale {duration_text(self.staleness_us)}, {self.strategy} from {self.source}"
            f"{extra}>"
        )

    def __str__(self) -> str:
        lines = [
            f"{self.series} {_span(self.range)}, {duration_text(self.interval_us)} bars",
            f"  strategy: {self.strategy}, source: {self.source}"
            + (f", job: {self.job_id}" if self.job_id else ""),
            f"  coverage: {self.coverage_ratio:.1%}",
            f"  covered: {_spans(self.covered)}",
            f"  gaps: {_spans(self.gaps)}",
            f"  staleness: {duration_text(self.staleness_us)}, settled until "
            f"{us_to_text(self.settled_until_us)}",
        ]
        if self.reason:
            lines.append(f"  {'downgraded' if self.downgraded else 'note'}: {self.reason}")
        if self.degraded:
            lines.append("  degraded: the coordinator could not be asked")
        if self.fingerprint is not None:
            lines.append(f"  fingerprint: {self.fingerprint.sha256[:16]}…")
        if self.timings_ms:
            lines.append(
                "  timings: " + ", ".join(f"{k} {v:.1f}ms" for k, v in self.timings_ms.items())
            )
        return "\n".join(lines)

    def readable(self) -> dict[str, Any]:
        """The metadata as plain data for people: ISO times, durations, ``dataset/symbol``."""
        return {
            "series": str(self.series),
            "start": us_to_text(self.range.start_us),
            "end": us_to_text(self.range.end_us),
            "interval": duration_text(self.interval_us),
            "covered": [[us_to_text(r.start_us), us_to_text(r.end_us)] for r in self.covered],
            "gaps": [[us_to_text(r.start_us), us_to_text(r.end_us)] for r in self.gaps],
            "coverage_ratio": self.coverage_ratio,
            "staleness": duration_text(self.staleness_us),
            "settled_until": us_to_text(self.settled_until_us),
            "strategy": self.strategy,
            "source": self.source,
            "downgraded": self.downgraded,
            "reason": self.reason,
            "degraded": self.degraded,
            "job_id": self.job_id,
            "live_rows": self.live_rows,
            "fingerprint": self.fingerprint.sha256 if self.fingerprint else None,
            "timings_ms": dict(self.timings_ms),
        }

    def __getitem__(self, key: str) -> Any:
        found = self.readable()
        if key in found:
            return found[key]
        if key in self.__dataclass_fields__:
            return getattr(self, key)
        raise KeyError(f"{key!r}: SeamlessMeta has {', '.join(found)}")

    def __contains__(self, key: object) -> bool:
        return key in self.readable() or key in self.__dataclass_fields__

    def __iter__(self) -> Iterator[str]:
        return iter(self.readable())

    def __len__(self) -> int:
        return len(self.readable())

    def keys(self) -> list[str]:
        return list(self.readable())

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "series": str(self.series),
            "range": [self.range.start_us, self.range.end_us],
            "interval_us": self.interval_us,
            "covered": [[r.start_us, r.end_us] for r in self.covered],
            "gaps": [[r.start_us, r.end_us] for r in self.gaps],
            "coverage_ratio": self.coverage_ratio,
            "staleness_us": self.staleness_us,
            "settled_until_us": self.settled_until_us,
            "strategy": self.strategy,
            "source": self.source,
            "downgraded": self.downgraded,
            "reason": self.reason,
            "degraded": self.degraded,
            "job_id": self.job_id,
            "live_rows": self.live_rows,
            "conformance": self.conformance.to_dict() if self.conformance else None,
            "fingerprint": as_dict(self.fingerprint),
            "timings_ms": dict(self.timings_ms),
            "hold": self.hold,
            "breaches": list(self.breaches),
            "context": dict(self.context),
            "artifact": self.artifact,
            "storage_path": self.storage_path,
            "storage_retries": self.storage_retries,
        }


@dataclass(frozen=True, slots=True)
class SeamlessResult:
    """A read's rows (``frame``) and how they were served (``meta``)."""

    frame: pd.DataFrame
    meta: SeamlessMeta

    def to_frame(self) -> pd.DataFrame:
        """The frame with the metadata in ``frame.attrs["seamless"]``."""
        self.frame.attrs["seamless"] = self.meta
        return self.frame

    def to_arrow(self) -> Any:
        """The rows as a ``pyarrow.Table``; the metadata as JSON in its schema metadata
        (``seamless`` key, :func:`seamfill.sdk.formats.meta_of_arrow` reads it back)."""
        from seamfill.sdk.formats import frame_to_arrow

        return frame_to_arrow(self.frame, self.meta.to_dict())

    def to_polars(self) -> Any:
        """The rows as a ``polars.DataFrame`` (needs the ``polars`` extra); metadata in ``meta``."""
        from seamfill.sdk.formats import check_output, frame_to_polars

        check_output("polars")
        return frame_to_polars(self.frame)

    def data(self, output: str = "pandas") -> Any:
        """The rows in ``output`` shape: ``pandas`` (with ``attrs``), ``arrow`` or ``polars``."""
        from seamfill.sdk.formats import check_output

        shape = check_output(output)
        if shape == "arrow":
            return self.to_arrow()
        return self.to_polars() if shape == "polars" else self.to_frame()
