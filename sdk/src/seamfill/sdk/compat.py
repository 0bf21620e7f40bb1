"""Names and constructors for code written against the reference history-provider design.

With only its imports changed, such code runs on seamfill:

- :class:`EnhancedQuestDBProvider` — the convenience constructor over
  :class:`~seamfill.sdk.provider.AsyncSeamlessProvider` and
  :class:`~seamfill.sdk.settings.SeamlessSettings` (``dsn``, ``table``, ``fetcher``,
  ``live_fetcher``, ``strategy``, ``partial_ok``, ``sla``, ``conformance``);
- :data:`DataAvailabilityStrategy` — the strategies (``FAIL_FAST``, ``AUTO_BACKFILL``,
  ``PARTIAL_FILL``, ``SEAMLESS``);
- :data:`DataFetcher`, :data:`HistoryProvider`, :data:`LiveDataFeed` — the interface names.

Fetchers may implement seamfill's ``fetch(series, range, dataset)`` or the reference shape
``fetch(start, end, *, node_id, interval)`` with epoch-second ints; :func:`as_fetcher` adapts the
latter, so both work as inline backfill fetchers and live fetchers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seamfill.sdk.backfill.adapters import LegacyFetcherAdapter, as_fetcher, is_legacy
from seamfill.sdk.backfill.fetchers import Fetcher
from seamfill.sdk.provider import AsyncSeamlessProvider
from seamfill.sdk.quality.conformance import ConformancePipeline
from seamfill.sdk.read.live import LiveFetcher
from seamfill.sdk.settings import SeamlessSettings, Strategy
from seamfill.sdk.sla import SLAPolicy

DataAvailabilityStrategy = Strategy
DataFetcher = Fetcher
LiveDataFeed = LiveFetcher
HistoryProvider = AsyncSeamlessProvider


class EnhancedQuestDBProvider(AsyncSeamlessProvider):
    """A provider over one QuestDB table, configured by keywords.

    ``dsn``: QuestDB's PGWire DSN (its host is used for the columnar HTTP reads unless
    ``questdb_url`` is set). ``table``: the table, and the default dataset's name. ``fetcher``:
    fills gaps — inline when no coordinator is configured, through leases otherwise.
    ``live_fetcher``: the forming edge. Anything not given comes from ``settings``, else from the
    YAML file ``config`` (its ``seamless:`` section), else from ``SEAMFILL_*`` variables.
    """

    def __init__(
        self,
        dsn: str | None = None,
        table: str | None = None,
        fetcher: Any = None,
        live_fetcher: Any = None,
        strategy: Strategy | str | None = None,
        partial_ok: bool | None = None,
        sla: SLAPolicy | None = None,
        conformance: ConformancePipeline | None = None,
        *,
        settings: SeamlessSettings | None = None,
        config: str | Path | None = None,
        **overrides: Any,
    ) -> None:
        if settings is None:
            settings = (
                SeamlessSettings.from_yaml(config)
                if config is not None
                else SeamlessSettings.from_env()
            )
        given = {
            "questdb_dsn": dsn,
            "table": table,
            "strategy": strategy,
            "partial_ok": partial_ok,
            "sla": sla,
            "conformance": conformance,
        }
        changes = {k: v for k, v in given.items() if v is not None} | overrides
        if table is not None and "dataset" not in changes and settings.dataset is None:
            changes["dataset"] = table
        settings = settings.with_overrides(**changes)
        super().__init__(
            settings,
            fetcher=as_fetcher(fetcher) if fetcher is not None else None,
            live_fetcher=_live(live_fetcher),
        )


def _live(live_fetcher: Any) -> Any:
    if live_fetcher is None:
        return None
    return LegacyFetcherAdapter(live_fetcher) if is_legacy(live_fetcher) else live_fetcher
