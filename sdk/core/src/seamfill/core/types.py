"""Frozen value types shared by the SDK, the coordinator and the worker.

Times are int64 microseconds since the epoch; ranges are half-open ``[start_us, end_us)``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from seamfill.core.errors import InvalidRange, InvalidSeries

MAX_NAME_BYTES = 256
# Far enough for any market history and far from float64's exact-integer limit (Redis scores).
MIN_TS_US = 0
MAX_TS_US = 4_102_444_800_000_000  # 2100-01-01


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open range ``[start_us, end_us)`` of microseconds since the epoch."""

    start_us: int
    end_us: int

    def __post_init__(self) -> None:
        if self.end_us < self.start_us:
            raise InvalidRange(
                f"range.end_us ({self.end_us}) is before range.start_us ({self.start_us}): "
                "ranges are half-open [start, end) with start <= end"
            )

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def empty(self) -> bool:
        return self.end_us == self.start_us

    def contains(self, ts: int) -> bool:
        return self.start_us <= ts < self.end_us

    def validate(self, field_name: str = "range") -> TimeRange:
        """Raise :class:`InvalidRange` unless the range is non-empty and within supported time."""
        if self.empty:
            raise InvalidRange(
                f"{field_name} is empty ({self.start_us} == {self.end_us}): "
                "give an end after the start"
            )
        for name, v in (("start_us", self.start_us), ("end_us", self.end_us)):
            if not MIN_TS_US <= v <= MAX_TS_US:
                raise InvalidRange(
                    f"{field_name}.{name} = {v} is outside [{MIN_TS_US}, "
                    f"{MAX_TS_US}]: give microseconds since the epoch"
                )
        return self


@dataclass(frozen=True, slots=True)
class Series:
    """A dataset plus a symbol. Symbols are data: any text round-trips verbatim."""

    dataset: str
    symbol: str

    def __post_init__(self) -> None:
        for name, value in (("dataset", self.dataset), ("symbol", self.symbol)):
            if not value:
                raise InvalidSeries(f"series.{name} is empty: give a {name} name")
            if len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
                raise InvalidSeries(f"series.{name} is longer than {MAX_NAME_BYTES} bytes")
            if "\x00" in value:
                raise InvalidSeries(f"series.{name} contains a NUL character: remove it")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                raise InvalidSeries(f"series.{name} is not valid Unicode text: {e}") from e
        if "/" in self.dataset:
            raise InvalidSeries(
                f"series.dataset {self.dataset!r} contains '/': dataset names "
                "are like 'binance.ohlcv_1m'"
            )

    @classmethod
    def parse(cls, text: str) -> Series:
        """Parse ``dataset/symbol`` (the symbol may itself contain '/')."""
        dataset, sep, symbol = text.partition("/")
        if not sep:
            raise InvalidSeries(
                f"series {text!r} has no '/': write it as DATASET/SYMBOL, "
                "e.g. binance.ohlcv_1m/BTC-USDT"
            )
        return cls(dataset, symbol)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.symbol}"


class Priority(enum.IntEnum):
    """Scheduling class; lower values are served first."""

    INTERACTIVE = 1
    NORMAL = 2
    BULK = 3


class JobState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"


class ChunkState(enum.Enum):
    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"
    BACKOFF = "backoff"


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named kind of series: one QuestDB table, one upstream source, one bar grid."""

    name: str
    """Dataset name, e.g. ``binance.ohlcv_1m``."""
    table: str
    """QuestDB table the rows live in."""
    source: str
    """Upstream source the fetcher is chosen by, e.g. ``synthetic`` or ``ccxt:binance``."""
    interval_us: int
    """Bar interval; every range aligns to this grid."""
    chunk_bars: int = 1000
    """Bars per chunk (the unit of work)."""
    settle_us: int = 0
    """Margin after the forming bar that is never marked covered."""
    max_concurrency: int = 0
    """Leases in flight for this dataset; 0 means no cap."""
    kind: str = "bars"
    """``bars`` (dedup on timestamp + symbol) or ``trades`` (timestamp + symbol + trade id)."""
    storage: str = ""
    """Name of the QuestDB this dataset lives in; empty means the default."""
    options: dict[str, str] = field(default_factory=dict)
    """Fetcher options, e.g. ``root`` for the files fetcher."""
    symbol_pattern: str = ""
    """A regular expression every symbol must match in full (e.g. ``[A-Z0-9]+/[A-Z0-9]+``);
    empty means any symbol."""

    def check_symbol(self, symbol: str, field: str = "series.symbol") -> None:
        """Raise :class:`InvalidSeries` naming the dataset's symbol rule if ``symbol`` breaks it."""
        if self.symbol_pattern and re.fullmatch(self.symbol_pattern, symbol) is None:
            raise InvalidSeries(
                f"{field} {symbol[:40]!r} does not match {self.name}'s symbol rule "
                f"symbol_pattern {self.symbol_pattern!r}: use a symbol of that form"
            )

    @property
    def chunk_span_us(self) -> int:
        return self.interval_us * self.chunk_bars

    def settled_until(self, now_us: int) -> int:
        """End of the settled history: the forming bar and the settle margin are excluded."""
        forming_start = now_us - (now_us % self.interval_us)
        edge = forming_start - self.settle_us
        return edge - (edge % self.interval_us)


@dataclass(frozen=True, slots=True)
class Coverage:
    """What storage holds for a series within a range, as the coordinator sees it."""

    series: Series
    range: TimeRange
    covered: tuple[TimeRange, ...]
    gaps: tuple[TimeRange, ...]
    queued: tuple[TimeRange, ...] = ()
    leased: tuple[TimeRange, ...] = ()
    as_of_us: int = 0
    settled_until_us: int = 0

    @property
    def ratio(self) -> float:
        """Covered share of the range, 0..1."""
        if self.range.empty:
            return 1.0
        done = sum(r.duration_us for r in self.covered)
        return done / self.range.duration_us

    @property
    def complete(self) -> bool:
        return not self.gaps


@dataclass(frozen=True, slots=True)
class JobProgress:
    chunks_total: int = 0
    chunks_done: int = 0
    chunks_failed: int = 0
    chunks_leased: int = 0
    rows_done: int = 0
    rows_per_second: float = 0.0
    eta_seconds: float = -1.0


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    series: Series
    range: TimeRange
    priority: Priority
    state: JobState
    progress: JobProgress = JobProgress()
    requested_by: str = ""
    created_us: int = 0
    updated_us: int = 0
    error: str = ""
    traceparent: str = ""

    @property
    def finished(self) -> bool:
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    series: Series
    range: TimeRange
    state: ChunkState = ChunkState.QUEUED
    attempts: int = 0
    last_error: str = ""
    rows: int = 0
    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Lease:
    """A chunk granted to one worker until ``deadline_us``; ``token`` fences stale holders."""

    lease_id: str
    token: int
    chunk: Chunk
    dataset: Dataset
    deadline_us: int
    worker_id: str = ""
    traceparent: str = ""
    granted_us: int = 0
    progress_until_us: int = 0
    progress_rows: int = 0


class Directive(enum.IntEnum):
    """What a heartbeat answers for one lease (values match the wire enum)."""

    CONTINUE = 1
    STOP_CANCELLED = 2
    STOP_PAUSED = 3
    LOST = 4


@dataclass(frozen=True, slots=True)
class LeaseProgress:
    """A heartbeat's report for one lease: written up to ``until_us``, ``rows`` so far."""

    lease_id: str
    token: int
    until_us: int = 0
    rows: int = 0


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """The coordinator's answer to a heartbeat, for one lease."""

    lease_id: str
    directive: Directive
    deadline_us: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    worker_id: str
    sources: tuple[str, ...]
    last_seen_us: int
    leases: int
    draining: bool
    rows: int


@dataclass(frozen=True, slots=True)
class DatasetStats:
    dataset: str
    queued: int = 0
    leased: int = 0
    backoff: int = 0
    dead: int = 0
    rows_done: int = 0
    rows_per_second: float = 0.0
    chunks_done: int = 0
    lease_expiries: int = 0


@dataclass(frozen=True, slots=True)
class Stats:
    datasets: tuple[DatasetStats, ...] = ()
    jobs_running: int = 0
    workers: int = 0
    as_of_us: int = 0


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A frame's digest and what it covers; ``preview`` marks one taken over partial data.

    Computed by :func:`seamfill.sdk.quality.fingerprint.fingerprint`; published and listed by the
    coordinator for audit.
    """

    series: Series
    range: TimeRange
    sha256: str
    as_of_us: int
    rows: int
    preview: bool = False
    early: bool = False
    published_by: str = ""
    published_us: int = 0
