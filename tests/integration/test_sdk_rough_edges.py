"""SDK rough edges: a PARTIAL_FILL read with nothing stored says why, and FAIL_FAST lists its
gaps in dates, not microseconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from seamfill.sdk import AsyncSeamlessProvider, MissingData
from tests.coordinator_fixtures import RunningCoordinator
from tests.integration.test_sdk_fleet import settings
from tests.sdk_support import T0

pytestmark = pytest.mark.integration


async def test_partial_fill_with_nothing_stored_says_why_in_reason(
    coordinator: RunningCoordinator, questdb_url: str, tmp_path: Path
) -> None:
    s = settings(coordinator, questdb_url, strategy="partial_fill", cache_bytes=0)
    async with AsyncSeamlessProvider(s) as p:
        r = await p.read("2024-01-01", "2024-01-01T02:00:00Z", node_id="NOTHING")
    assert len(r.frame) == 0 and r.meta.job_id
    assert "nothing of the range is stored yet" in r.meta.reason, r.meta.reason
    assert r.meta.job_id in r.meta.reason
    assert "2024-01-01T00:00:00Z" in r.meta.reason


async def test_fail_fast_lists_its_gaps_as_dates(
    coordinator: RunningCoordinator, questdb_url: str
) -> None:
    s = settings(coordinator, questdb_url, strategy="fail_fast")
    async with AsyncSeamlessProvider(s) as p:
        with pytest.raises(MissingData) as e:
            await p.read("2024-01-01", "2024-01-01T02:00:00Z", node_id="GAPS")
    assert "[2024-01-01T00:00:00Z, 2024-01-01T02:00:00Z)" in e.value.message, e.value.message
    assert str(T0) not in e.value.message
