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


def test_reconcile_covers_complete_cells_only_and_uncovers_the_rest(
    coordinator_factory: Callable[..., RunningCoordinator], table: str, questdb_url: str
) -> None:
    spec = test_dataset_spec(table)
    co = coordinator_factory(
        datasets={TEST_DATASET: spec}, storage={"default": {"http": questdb_url}}
    )
    c = co.client()
    sym = "it's a,b=c"
    s = Series(co.dataset, sym)
    # Coverage claims hour 3; storage holds all 60 bars of hours 0 and 2 (symbol quoted in SQL).
    job = c.ensure_range(s, TimeRange(3 * HOUR, 4 * HOUR))
    assert job is not None
    lease = c.acquire("w").leases[0]
    c.complete("w", lease.lease_id, lease.token, 0)
    lit = sym.replace("'", "''")
    for hour, who in ((0, lit), (2, lit), (1, "other")):
        _exec(
            questdb_url,
            f'INSERT INTO "{table}" SELECT cast({hour * HOUR} + (x - 1) * 60000000 AS TIMESTAMP), '
            f"'{who}', 1.0 FROM long_sequence(60)",
        )

    def visible() -> bool:
        body = _exec(questdb_url, f'SELECT count() FROM "{table}"')
        return body["dataset"] == [[180]]  # type: ignore[comparison-overlap]

    wait_for(visible, timeout=30, interval=0.1)
    res = c.reconcile(s, TimeRange(0, 5 * HOUR))
    assert res.rows == 120
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


def test_an_hour_holding_1_of_60_bars_stays_a_gap_and_ensure_range_fetches_the_59(
    coordinator_factory: Callable[..., RunningCoordinator], questdb_url: str, unique: str
) -> None:
    import asyncio

    from seamfill.sdk.backfill.chunk import run_chunk
    from seamfill.sdk.backfill.fetchers import SyntheticFetcher
    from seamfill.sdk.backfill.sink import QuestDBSink

    table = f"recon1_{unique}"
    co = coordinator_factory(
        datasets={TEST_DATASET: test_dataset_spec(table)},
        storage={"default": {"http": questdb_url}},
    )
    c = co.client()
    s = Series(co.dataset, "BTC")
    hour = TimeRange(HOUR, 2 * HOUR)
    dataset = next(d for d in c.list_datasets() if d.name == co.dataset)

    async def write_one_bar_then_backfill() -> int:
        async with QuestDBSink(questdb_url, visibility_timeout_s=20) as sink:
            one = await SyntheticFetcher().fetch(s, TimeRange(HOUR, HOUR + 60_000_000), dataset)
            await sink.wait_visible(dataset, "BTC", hour, await sink.write(dataset, "BTC", one))
            res = c.reconcile(s, TimeRange(0, 3 * HOUR))
            assert res.rows == 1 and hour not in res.covered
            assert c.get_coverage(s, hour).gaps == (hour,)
            c.ensure_range(s, hour)
            lease = c.acquire("w").leases[0]
            assert lease.chunk.range == hour
            rows = await run_chunk(SyntheticFetcher(), sink, s, hour, dataset)
            c.complete("w", lease.lease_id, lease.token, rows)
            return int((await sink.exec(f'SELECT count() FROM "{table}"'))["dataset"][0][0])

    try:
        assert asyncio.run(write_one_bar_then_backfill()) == 60  # the 59 missing arrived
        assert c.get_coverage(s, hour).covered == (hour,)
    finally:
        _exec(questdb_url, f'DROP TABLE IF EXISTS "{table}"')


def test_a_query_storage_refuses_is_failed_precondition_not_unavailable(
    coordinator_factory: Callable[..., RunningCoordinator], questdb_url: str, unique: str
) -> None:
    import grpc

    from seamfill.v1 import admin_pb2, admin_pb2_grpc, common_pb2

    table = f"recon400_{unique}"
    # A table of the dataset's name without a 'symbol' column: QuestDB answers the query 400.
    _exec(questdb_url, f'CREATE TABLE "{table}" (ts TIMESTAMP, x DOUBLE) TIMESTAMP(ts)')
    try:
        co = coordinator_factory(
            datasets={TEST_DATASET: test_dataset_spec(table)},
            storage={"default": {"http": questdb_url}},
        )
        request = admin_pb2.ReconcileRequest(
            series=common_pb2.Series(dataset=co.dataset, symbol="BTC"),
            range=common_pb2.TimeRange(start_us=0, end_us=HOUR),
        )
        with grpc.insecure_channel(co.address) as channel, pytest.raises(grpc.RpcError) as e:
            admin_pb2_grpc.AdminStub(channel).Reconcile(request, timeout=30)
        assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # not UNAVAILABLE: no retry
        assert "400" in (e.value.details() or "")
    finally:
        _exec(questdb_url, f'DROP TABLE IF EXISTS "{table}"')


def test_dataset_wide_reconcile_of_20_series_is_one_command(
    coordinator_factory: Callable[..., RunningCoordinator], table: str, questdb_url: str
) -> None:
    """`seamfill admin reconcile DATASET` goes through every symbol storage holds in the range
    and every symbol with coverage there, with progress, in one command."""
    from click.testing import CliRunner

    from seamfill.cli.admin import admin

    co = coordinator_factory(
        datasets={TEST_DATASET: test_dataset_spec(table)},
        storage={"default": {"http": questdb_url}},
    )
    c = co.client()
    symbols = [f"S{i:02d}" for i in range(20)]
    # Storage holds hours 0 and 1 of 20 symbols (60 bars each), and nothing of GHOST.
    _exec(
        questdb_url,
        f'INSERT INTO "{table}" SELECT cast(((x - 1) / 20) * 60000000 AS TIMESTAMP), '
        f"'S' || lpad(cast((x - 1) % 20 AS STRING), 2, '0'), 1.0 FROM long_sequence({20 * 120})",
    )
    wait_for(
        lambda: _exec(questdb_url, f'SELECT count() FROM "{table}"')["dataset"] == [[2400]],
        timeout=30,
        interval=0.1,
    )
    # GHOST claims hour 0 covered with no row behind it: the reconcile must find it too.
    ghost = Series(co.dataset, "GHOST")
    assert c.ensure_range(ghost, TimeRange(0, HOUR)) is not None
    lease = c.acquire("w").leases[0]
    c.complete("w", lease.lease_id, lease.token, 0)
    assert c.get_coverage(ghost, TimeRange(0, HOUR)).covered == (TimeRange(0, HOUR),)

    result = CliRunner().invoke(
        admin,
        [
            "--coordinator",
            co.address,
            "reconcile",
            co.dataset,
            "--start",
            "0",
            "--end",
            str(3 * HOUR),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"[21/21] {co.dataset}/S19" in result.stderr, result.stderr
    assert "reconciled 21 series" in result.stdout and "2,400 rows" in result.stdout
    for sym in symbols:
        got = c.get_coverage(Series(co.dataset, sym), TimeRange(0, 3 * HOUR))
        assert got.covered == (TimeRange(0, 2 * HOUR),), sym
    assert c.get_coverage(ghost, TimeRange(0, HOUR)).covered == ()


def test_dataset_wide_reconcile_of_an_unknown_dataset_names_the_known_ones(
    coordinator: RunningCoordinator,
) -> None:
    from click.testing import CliRunner

    from seamfill.cli.admin import admin

    result = CliRunner().invoke(
        admin,
        [
            "--coordinator",
            coordinator.address,
            "reconcile",
            "no.such",
            "--start",
            "0",
            "--end",
            str(HOUR),
        ],
    )
    assert result.exit_code == 1
    message = str(result.exception)
    assert type(result.exception).__name__ == "DatasetNotFound", message
    assert "dataset 'no.such' is not a dataset of this coordinator" in message
    assert coordinator.dataset in message
