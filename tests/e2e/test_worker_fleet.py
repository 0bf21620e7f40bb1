"""The worker fleet end to end: coordinator and workers as real processes, real Redis/QuestDB."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from seamfill.v1 import common_pb2
from tests.e2e.worker_support import DAY, MIN, T0, Fleet, sql, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def fleet(tmp_path: Path, redis_url: str, questdb_url: str, key_prefix: str) -> Iterator[Fleet]:
    f = Fleet(tmp_path, redis_url, questdb_url, key_prefix)
    yield f
    f.close()


@pytest.fixture
def table(unique: str, questdb_url: str) -> Iterator[str]:
    name = f"wfleet_{unique}"
    yield name
    sql(questdb_url, f'DROP TABLE IF EXISTS "{name}"')


def test_two_workers_backfill_432k_rows_exactly_once_through_a_kill_9(
    fleet: Fleet, table: str, questdb_url: str
) -> None:
    ds = "e2e.ohlcv_1m"
    # A short TTL: the killed worker's leases come back within seconds. Each fetch takes a
    # little while (SLOW symbols), so the kill lands while the worker holds leases.
    fleet.start_coordinator(
        {ds: {"table": table, "source": "scripted", "interval": "1m", "chunk_bars": 4320}},
        lease_ttl_ms=3000,
    )
    slow = {"SEAMFILL_TEST_FETCH_DELAY": "0.05"}
    a = fleet.start_worker("wA", "--concurrency", "2", env=slow)
    b = fleet.start_worker("wB", "--concurrency", "2", env=slow)
    symbols = [f"SLOW{i}" for i in range(10)]
    end = T0 + 30 * DAY
    jobs = [fleet.ensure(ds, s, T0, end) for s in symbols]
    assert all(jobs)

    # Kill -9 one worker in the middle, while it holds leases.
    def busy() -> bool:
        done = {e["lease"] for e in a.events("seamless.backfill.succeeded")}
        started = {e["lease"] for e in a.events("seamless.backfill.attempt")}
        return len(done) >= 8 and bool(started - done)

    wait_for(busy, 60, "wA to be in the middle of its work")
    a.popen.kill()
    a.popen.wait()
    in_flight = {e["lease"] for e in a.events("seamless.backfill.attempt")} - {
        e["lease"] for e in a.events("seamless.backfill.succeeded")
    }
    assert in_flight, "wA held no lease when it was killed"
    wait_for(
        lambda: all(fleet.job_state(j) == common_pb2.JOB_STATE_DONE for j in jobs),
        120,
        "every job to finish",
    )
    assert all(fleet.gaps(ds, s, T0, end) == [] for s in symbols)
    assert sql(questdb_url, f'SELECT count() FROM "{table}"') == [[432_000]]
    distinct = sql(questdb_url, f'SELECT count() FROM (SELECT DISTINCT ts, symbol FROM "{table}")')
    assert distinct == [[432_000]]
    # The dead worker's in-flight chunks were leased again and finished by the other one.
    assert in_flight <= {e["lease"] for e in b.events("seamless.backfill.succeeded")}
    per_symbol = sql(questdb_url, f'SELECT symbol, count() FROM "{table}" ORDER BY symbol')
    assert per_symbol == [[s, 43_200] for s in symbols]


def test_sigterm_releases_chunks_to_the_other_worker_long_before_the_ttl(
    fleet: Fleet, table: str, questdb_url: str
) -> None:
    ds = "e2e.slow"
    ttl_ms = 120_000
    fleet.start_coordinator(
        {ds: {"table": table, "source": "scripted", "interval": "1m", "chunk_bars": 60}},
        lease_ttl_ms=ttl_ms,
    )
    # wA fetches for minutes: it holds its leases in the fetching stage when told to stop.
    a = fleet.start_worker("wA", "--concurrency", "2", env={"SEAMFILL_TEST_FETCH_DELAY": "600"})
    job = fleet.ensure(ds, "SLOW-1", T0, T0 + 120 * MIN)
    wait_for(lambda: len(a.events("seamless.backfill.attempt")) == 2, 30, "wA to hold 2 leases")
    b = fleet.start_worker("wB", "--concurrency", "2", env={"SEAMFILL_TEST_FETCH_DELAY": "0"})
    a.signal(signal.SIGTERM)
    assert a.popen.wait(30) == 0
    released = {e["lease"] for e in a.events("seamless.lease.released")}
    assert len(released) == 2
    # wB finishes them: bounded well below the TTL, so an expiry could not have freed them.
    wait_for(
        lambda: fleet.job_state(job) == common_pb2.JOB_STATE_DONE,
        ttl_ms / 1000 / 4,
        "wB to finish the released chunks",
    )
    assert {e["lease"] for e in b.events("seamless.backfill.succeeded")} == released
    assert sql(questdb_url, f'SELECT count() FROM "{table}"') == [[120]]
