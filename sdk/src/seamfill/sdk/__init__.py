"""seamfill's client SDK: read any range of a market-data series as if it had always been stored.

    from seamfill.sdk import SeamlessProvider, SeamlessSettings

    with SeamlessProvider(SeamlessSettings.from_yaml("seamfill.yaml")) as provider:
        df = provider.fetch("2024-01-01", "2024-02-01", node_id="binance.ohlcv_1m/BTC-USDT")
        df.attrs["seamless"].gaps   # what could not be served, and why (``.reason``)

Names are resolved on first use, so importing ``seamfill.core.errors`` (as the coordinator and the
worker do) does not load pandas or gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Artifact": "seamfill.sdk.read.artifacts",
    "ArtifactRegistry": "seamfill.sdk.read.artifacts",
    "AsyncSeamlessProvider": "seamfill.sdk.provider",
    "ComputeContext": "seamfill.sdk.context",
    "ConfigError": "seamfill.core.errors",
    "ConformanceError": "seamfill.core.errors",
    "ConformancePipeline": "seamfill.sdk.quality.conformance",
    "ConformanceReport": "seamfill.sdk.quality.conformance",
    "CoordinatorUnavailable": "seamfill.core.errors",
    "Coverage": "seamfill.core.types",
    "DataAvailabilityStrategy": "seamfill.sdk.compat",
    "DataFetcher": "seamfill.sdk.compat",
    "Dataset": "seamfill.core.types",
    "EnhancedQuestDBProvider": "seamfill.sdk.compat",
    "ExecutionDomain": "seamfill.sdk.context",
    "FetchError": "seamfill.core.errors",
    "Fetcher": "seamfill.sdk.backfill.fetchers",
    "Fingerprint": "seamfill.core.types",
    "HistoryProvider": "seamfill.sdk.compat",
    "HoldMode": "seamfill.sdk.sla",
    "InMemoryProvider": "seamfill.sdk.memory",
    "InvalidArgument": "seamfill.core.errors",
    "InvalidRange": "seamfill.core.errors",
    "InvalidSeries": "seamfill.core.errors",
    "LiveDataFeed": "seamfill.sdk.compat",
    "LiveFetcher": "seamfill.sdk.read.live",
    "MaterializeReport": "seamfill.sdk.materialize",
    "MemoryStorage": "seamfill.sdk.memory",
    "MissingData": "seamfill.core.errors",
    "OnBreach": "seamfill.sdk.sla",
    "SLAPolicy": "seamfill.sdk.sla",
    "SeamfillError": "seamfill.core.errors",
    "SeamlessMeta": "seamfill.sdk.result",
    "SeamlessProvider": "seamfill.sdk._sync",
    "SeamlessResult": "seamfill.sdk.result",
    "SeamlessSLAExceeded": "seamfill.core.errors",
    "SeamlessSettings": "seamfill.sdk.settings",
    "Series": "seamfill.core.types",
    "Severity": "seamfill.sdk.quality.conformance",
    "StorageError": "seamfill.core.errors",
    "StorageSaturated": "seamfill.core.errors",
    "Strategy": "seamfill.sdk.settings",
    "StreamInput": "seamfill.sdk.read.stream",
    "SyntheticFetcher": "seamfill.sdk.backfill.fetchers",
    "TimeRange": "seamfill.core.types",
    "open_provider": "seamfill.sdk.memory",
}

__all__ = [
    "Artifact",
    "ArtifactRegistry",
    "AsyncSeamlessProvider",
    "ComputeContext",
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
    "ExecutionDomain",
    "FetchError",
    "Fetcher",
    "Fingerprint",
    "HistoryProvider",
    "HoldMode",
    "InMemoryProvider",
    "InvalidArgument",
    "InvalidRange",
    "InvalidSeries",
    "LiveDataFeed",
    "LiveFetcher",
    "MaterializeReport",
    "MemoryStorage",
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
    "open_provider",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seamfill.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from seamfill.core.errors import (
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
    from seamfill.core.types import Coverage, Dataset, Fingerprint, Series, TimeRange
    from seamfill.sdk._sync import SeamlessProvider
    from seamfill.sdk.backfill.fetchers import Fetcher, SyntheticFetcher
    from seamfill.sdk.compat import (
        DataAvailabilityStrategy,
        DataFetcher,
        EnhancedQuestDBProvider,
        HistoryProvider,
        LiveDataFeed,
    )
    from seamfill.sdk.context import ComputeContext, ExecutionDomain
    from seamfill.sdk.materialize import MaterializeReport
    from seamfill.sdk.memory import InMemoryProvider, MemoryStorage, open_provider
    from seamfill.sdk.provider import AsyncSeamlessProvider
    from seamfill.sdk.quality.conformance import ConformancePipeline, ConformanceReport, Severity
    from seamfill.sdk.read.artifacts import Artifact, ArtifactRegistry
    from seamfill.sdk.read.live import LiveFetcher
    from seamfill.sdk.read.stream import StreamInput
    from seamfill.sdk.result import SeamlessMeta, SeamlessResult
    from seamfill.sdk.settings import SeamlessSettings, Strategy
    from seamfill.sdk.sla import HoldMode, OnBreach, SLAPolicy
