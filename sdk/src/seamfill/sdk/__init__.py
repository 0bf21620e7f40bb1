"""seamfill's client SDK: read any range of a market-data series as if it had always been stored.

    from seamfill.sdk import SeamlessProvider, SeamlessSettings

    with SeamlessProvider(SeamlessSettings.from_yaml("seamfill.yaml")) as provider:
        df = provider.fetch("2024-01-01", "2024-02-01", node_id="binance.ohlcv_1m/BTC-USDT")
        df.attrs["seamless"].gaps   # what could not be served, and why (``.reason``)

Names are resolved on first use, so importing ``seamfill.sdk.errors`` (as the coordinator and the
worker do) does not load pandas or gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AsyncSeamlessProvider": "provider",
    "ConfigError": "errors",
    "ConformanceError": "errors",
    "ConformancePipeline": "conformance",
    "ConformanceReport": "conformance",
    "CoordinatorUnavailable": "errors",
    "Coverage": "types",
    "DataAvailabilityStrategy": "compat",
    "DataFetcher": "compat",
    "Dataset": "types",
    "EnhancedQuestDBProvider": "compat",
    "FetchError": "errors",
    "Fetcher": "fetchers",
    "Fingerprint": "fingerprint",
    "HistoryProvider": "compat",
    "InvalidArgument": "errors",
    "InvalidRange": "errors",
    "InvalidSeries": "errors",
    "LiveDataFeed": "compat",
    "LiveFetcher": "live",
    "MissingData": "errors",
    "OnBreach": "sla",
    "SLAPolicy": "sla",
    "SeamfillError": "errors",
    "SeamlessMeta": "result",
    "SeamlessProvider": "provider",
    "SeamlessResult": "result",
    "SeamlessSLAExceeded": "errors",
    "SeamlessSettings": "settings",
    "Series": "types",
    "Severity": "conformance",
    "StorageError": "errors",
    "StorageSaturated": "errors",
    "Strategy": "settings",
    "StreamInput": "stream",
    "SyntheticFetcher": "fetchers",
    "TimeRange": "types",
}

__all__ = [
    "AsyncSeamlessProvider",
    "ConfigError",
    "ConformanceError",
    "ConformancePipeline",
    "ConformanceReport",
    "CoordinatorUnavailable",
    "Coverage",
    "DataAvailabilityStrategy",
    "DataFetcher",
    "Dataset",
    "EnhancedQuestDBProvider",
    "FetchError",
    "Fetcher",
    "Fingerprint",
    "HistoryProvider",
    "InvalidArgument",
    "InvalidRange",
    "InvalidSeries",
    "LiveDataFeed",
    "LiveFetcher",
    "MissingData",
    "OnBreach",
    "SLAPolicy",
    "SeamfillError",
    "SeamlessMeta",
    "SeamlessProvider",
    "SeamlessResult",
    "SeamlessSLAExceeded",
    "SeamlessSettings",
    "Series",
    "Severity",
    "StorageError",
    "StorageSaturated",
    "Strategy",
    "StreamInput",
    "SyntheticFetcher",
    "TimeRange",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seamfill.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"seamfill.sdk.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from seamfill.sdk.compat import (
        DataAvailabilityStrategy,
        DataFetcher,
        EnhancedQuestDBProvider,
        HistoryProvider,
        LiveDataFeed,
    )
    from seamfill.sdk.conformance import ConformancePipeline, ConformanceReport, Severity
    from seamfill.sdk.errors import (
        ConfigError,
        ConformanceError,
        CoordinatorUnavailable,
        FetchError,
        InvalidArgument,
        InvalidRange,
        InvalidSeries,
        MissingData,
        SeamfillError,
        SeamlessSLAExceeded,
        StorageError,
        StorageSaturated,
    )
    from seamfill.sdk.fetchers import Fetcher, SyntheticFetcher
    from seamfill.sdk.fingerprint import Fingerprint
    from seamfill.sdk.live import LiveFetcher
    from seamfill.sdk.provider import AsyncSeamlessProvider, SeamlessProvider
    from seamfill.sdk.result import SeamlessMeta, SeamlessResult
    from seamfill.sdk.settings import SeamlessSettings, Strategy
    from seamfill.sdk.sla import OnBreach, SLAPolicy
    from seamfill.sdk.stream import StreamInput
    from seamfill.sdk.types import Coverage, Dataset, Series, TimeRange
