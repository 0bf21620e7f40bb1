"""Deployment profiles against real servers: prod needs a SERVING coordinator at construction,
a configured but unreachable coordinator can mean an inline fill, and inline failures log the
fleet's failure event."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from seamfill.core.errors import CoordinatorUnavailable, FetchError
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk import AsyncSeamlessProvider, SeamlessProvider, SeamlessSettings, SyntheticFetcher
from tests.sdk_support import MIN, T0, count, create_bars_table, drop_table, grid, insert_bars

pytestmark = pytest.mark.integration


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def table(questdb_url: str, unique: str) -> Iterator[str]:
    name = f"prof_{unique}"
    create_bars_table(questdb_url, name)
    yield name
    drop_table(questdb_url, name)


def test_prod_profile_refuses_to_start_without_a_serving_coordinator(questdb_url: str) -> None:
    s = SeamlessSettings(
        coordinator_url=closed_port(),
        questdb_url=questdb_url,
        profile="prod",
        sla={"storage_deadline_ms": 1000},
    )
    with pytest.raises(CoordinatorUnavailable, match="profile prod needs a healthy coordinator"):
        SeamlessProvider(s)


def test_prod_profile_starts_with_a_serving_coordinator(questdb_url: str, coordinator: Any) -> None:
    s = SeamlessSettings(
        coordinator_url=coordinator.address, questdb_url=questdb_url, profile="prod"
    )
    with SeamlessProvider(s) as provider:
        assert provider.settings.profile == "prod"


async def test_unreachable_coordinator_with_inline_setting_fills_here(
    questdb_url: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="seamfill.sdk.provider")
    insert_bars(questdb_url, table, "BTC", grid(T0, 10))
    s = SeamlessSettings(
        coordinator_url=closed_port(),
        questdb_url=questdb_url,
        dataset=table,
        table=table,
        strategy="auto_backfill",
        on_coordinator_unavailable="inline",
        sla={"storage_deadline_ms": 5000},
    )
    async with AsyncSeamlessProvider(s, fetcher=SyntheticFetcher()) as p:
        r = await p.read(T0, T0 + 60 * MIN, node_id="BTC")
    assert len(r.frame) == 60 and r.meta.gaps == () and r.meta.degraded
    assert "gaps filled inline in this process (coordinator unavailable; leases skipped)" in (
        r.meta.reason
    )
    assert count(questdb_url, table, "BTC") == 60
    said = [r for r in caplog.records if getattr(r, "event", "") == "seamless.backfill.inline"]
    assert said and "without leases" in said[0].fields["message"]  # type: ignore[attr-defined]


async def test_unreachable_coordinator_degrades_by_default(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "BTC", grid(T0, 10))
    s = SeamlessSettings(
        coordinator_url=closed_port(),
        questdb_url=questdb_url,
        dataset=table,
        table=table,
        strategy="auto_backfill",
        sla={"storage_deadline_ms": 5000},
    )
    async with AsyncSeamlessProvider(s, fetcher=SyntheticFetcher()) as p:
        r = await p.read(T0, T0 + 60 * MIN, node_id="BTC")
    assert len(r.frame) == 10 and r.meta.gaps == (TimeRange(T0 + 10 * MIN, T0 + 60 * MIN),)
    assert count(questdb_url, table, "BTC") == 10


class Broken:
    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        raise FetchError("upstream said 503", retryable=True)


async def test_inline_failure_logs_the_fleets_failure_event(
    questdb_url: str, table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="seamfill.sdk.backfill.inline")
    s = SeamlessSettings(questdb_url=questdb_url, dataset=table, table=table, strategy="seamless")
    async with AsyncSeamlessProvider(s, fetcher=Broken()) as p:
        r = await p.read(T0, T0 + 10 * MIN, node_id="BTC")
    assert r.meta.downgraded and "upstream said 503" in r.meta.reason
    failed = [x for x in caplog.records if getattr(x, "event", "") == "seamless.backfill.failed"]
    assert len(failed) == 1
    fields = failed[0].fields  # type: ignore[attr-defined]
    assert {"lease", "worker", "reason"} <= set(fields)  # what the fleet path logs
    assert fields["reason"] == "FetchError: upstream said 503" and fields["retryable"] is True
    assert fields["worker"].startswith("inline-") and fields["start_us"] == T0
