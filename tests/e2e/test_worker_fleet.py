"""The worker fleet end to end: coordinator and workers as real processes, real Redis/QuestDB."""

from __future__ import annotations

import signal
import socket
import urllib.request
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
    # The dead worker's in-flight chunks were leased again and finished by the other one (one
    # may have been completed just before the kill, unlogged: the rows above tell the rest).
    assert in_flight & {e["lease"] for e in b.events("seamless.backfill.succeeded")}
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
    )


def test_workers_wait_out_a_coordinator_that_is_away_and_reconnect(
    fleet: Fleet, table: str, questdb_url: str
) -> None:
    ds = "e2e.away"
    port = _free_port()
    fleet.address = f"127.0.0.1:{port}"
    # The worker starts first, with no coordinator to talk to: it backs off and keeps trying.
    w = fleet.start_worker(
        "w1", "--concurrency", "2", "--metrics-port", "0", env={"SEAMFILL_TEST_FETCH_DELAY": "0.2"}
    )
    metrics_port = int(w.stdout().rsplit(":", 1)[-1])
    wait_for(
        lambda: len(w.events("seamless.coordinator.unavailable")) >= 2,
        30,
        "the worker to notice the coordinator is away",
    )
    spec = {ds: {"table": table, "source": "scripted", "interval": "1m", "chunk_bars": 60}}
    fleet.start_coordinator(spec, port=port)
    job = fleet.ensure(ds, "SLOW-AWAY", T0, T0 + 20 * 60 * MIN)
    wait_for(lambda: len(w.events("seamless.backfill.succeeded")) >= 4, 30, "some chunks done")
    # The coordinator dies mid-backfill and comes back on the same address.
    fleet.procs[-1].popen.kill()
    fleet.procs[-1].popen.wait()
    seen = len(w.events("seamless.coordinator.unavailable"))
    wait_for(
        lambda: len(w.events("seamless.coordinator.unavailable")) > seen,
        30,
        "the worker to notice the coordinator went away",
    )
    fleet.start_coordinator(spec, port=port)
    wait_for(lambda: fleet.job_state(job) == common_pb2.JOB_STATE_DONE, 60, "the job to finish")
    assert sql(questdb_url, f'SELECT count() FROM "{table}"') == [[1200]]
    assert _metric(metrics_port, "seamfill_worker_rows_written_total") >= 1200
    assert w.popen.poll() is None  # it never gave up


def test_capped_dataset_finishes_with_workers_at_the_default_long_poll(
    fleet: Fleet, table: str, questdb_url: str
) -> None:
    """Issue 15 finding 2: a dataset capped at 2 leases, 20 chunks, 3 workers long-polling at
    the worker's default wait: every chunk is done (a freed slot wakes the waiting workers)."""
    from seamfill.worker.config import WorkerConfig

    ds = "e2e.capped"
    fleet.start_coordinator(
        {
            ds: {
                "table": table,
                "source": "scripted",
                "interval": "1m",
                "chunk_bars": 60,
                "max_concurrency": 2,
            }
        },
    )
    wait = str(WorkerConfig.__dataclass_fields__["acquire_wait_ms"].default)
    for name in ("wA", "wB", "wC"):
        fleet.start_worker(name, "--concurrency", "2", "--acquire-wait-ms", wait)
    job = fleet.ensure(ds, "CAP-1", T0, T0 + 20 * 60 * MIN)
    wait_for(
        lambda: fleet.job_state(job) == common_pb2.JOB_STATE_DONE,
        60,
        "every chunk of the capped dataset to be done",
    )
    assert fleet.gaps(ds, "CAP-1", T0, T0 + 20 * 60 * MIN) == []
    assert sql(questdb_url, f'SELECT count() FROM "{table}"') == [[1200]]
