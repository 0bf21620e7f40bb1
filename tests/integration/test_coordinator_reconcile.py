"""Reconcile rebuilds coverage from what QuestDB holds; fingerprints are recorded for audit."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from seamfill.core.types import Fingerprint, Series, TimeRange
from tests.coordinator_fixtures import TEST_DATASET, RunningCoordinator, test_dataset_spec, wait_for

HOUR = 3_600_000_000
pytestmark = pytest.mark.integration


def _exec(base: str, sql: str) -> dict[str, object]:
    url = f"{base}/exec?" + urllib.parse.urlencode({"query": sql})
    with urllib.request.urlopen(url, timeout=30) as resp:
        body: dict[str, object] = json.load(resp)
        return body


@pytest.fixture
def table(questdb_url: str, unique: str) -> Iterator[str]:
    name = f"recon_{unique}"
    _exec(
        questdb_url,
        f'CREATE TABLE "{name}" (ts TIMESTAMP, symbol SYMBOL, close DOUBLE) '
        "TIMESTAMP(ts) PARTITION BY DAY WAL",
    )
    yield name
    _exec(questdb_url, f'DROP TABLE IF EXISTS "{name}"')


def test_reconcile_covers_cells_with_rows_and_uncovers_the_rest(
    coordinator_factory: Callable[..., RunningCoordinator], table: str, questdb_url: str
) -> None:
    spec = test_dataset_spec(table)
    co = coordinator_factory(
        datasets={TEST_DATASET: spec}, storage={"default": {"http": questdb_url}}
    )
    c = co.client()
    sym = "it's a,b=c"
    s = Series(co.dataset, sym)
    # Coverage claims hour 3, storage holds hours 0 and 2 (one row each, symbol quoted in SQL).
    job = c.ensure_range(s, TimeRange(3 * HOUR, 4 * HOUR))
    assert job is not None
    lease = c.acquire("w").leases[0]
    c.complete("w", lease.lease_id, lease.token, 0)
    lit = sym.replace("'", "''")
    rows = f"(0, '{lit}', 1.0), ({2 * HOUR + 60_000_000}, '{lit}', 2.0), ({HOUR}, 'other', 3.0)"
    _exec(questdb_url, f'INSERT INTO "{table}" VALUES {rows}')

    def visible() -> bool:
        body = _exec(questdb_url, f'SELECT count() FROM "{table}"')
        return body["dataset"] == [[3]]  # type: ignore[comparison-overlap]

    wait_for(visible, timeout=30, interval=0.1)
    res = c.reconcile(s, TimeRange(0, 5 * HOUR))
    assert res.rows == 2
    assert res.covered == (TimeRange(0, HOUR), TimeRange(2 * HOUR, 3 * HOUR))
    assert res.added == res.covered and res.removed == (TimeRange(3 * HOUR, 4 * HOUR),)
    assert c.get_coverage(s, TimeRange(0, 5 * HOUR)).covered == res.covered


def test_fingerprints_round_trip(coordinator: RunningCoordinator) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, "BTC")
    fp = Fingerprint(
        series=s,
        range=TimeRange(0, HOUR),
        sha256="ab" * 32,
        as_of_us=5,
        rows=60,
        preview=True,
        published_by="test",
    )
    stamped = c.publish_fingerprint(fp)
    assert stamped.published_us > 0 and stamped.sha256 == fp.sha256
    (got,) = c.get_fingerprints(s)
    assert got == stamped and got.preview and got.rows == 60
