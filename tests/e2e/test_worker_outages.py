"""An outage of a dependency pauses the fleet instead of failing its work (DESIGN §3.12).

Real processes: two coordinator replicas and three workers, the real Redis, and a QuestDB of the
test's own that it kills (SIGKILL) for ~15 s mid-backfill and starts again; then the same with the
upstream answering 503 for ~15 s. Every job must end DONE with exact rows, no duplicate, no dead
letter and no operator step, and each worker's circuit breaker must show its open and close in
the logs and the metrics.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seamfill.v1 import common_pb2
from tests.e2e.worker_support import MIN, T0, Fleet, Proc, wait_for
from tests.own_questdb import OwnQuestDB, own_questdb

pytestmark = pytest.mark.e2e

SYMBOLS = ["SLOW-A", "SLOW-B", "SLOW-C"]
BARS = 1800  # per symbol: 30 chunks of 60 bars


@pytest.fixture
def qdb() -> Iterator[OwnQuestDB]:
    with own_questdb() as server:
        yield server


def _sql(url: str, query: str) -> list[list[Any]]:
    full = f"{url}/exec?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(full, timeout=30) as resp:
        rows: list[list[Any]] = json.load(resp).get("dataset", [])
    return rows


def _fleet(tmp_path: Path, redis_url: str, key_prefix: str, qdb_url: str, table: str) -> Fleet:
    fleet = Fleet(tmp_path, redis_url, qdb_url, key_prefix)
    spec = {
        "e2e.outage": {
            "table": table,
            "source": "scripted",
            "interval": "1m",
            "chunk_bars": 60,
            "options": {"state_dir": str(tmp_path / "state")},
        }
    }
    (tmp_path / "state").mkdir()
    replicas = [fleet.start_coordinator(spec), fleet.start_coordinator(spec)]
    for n in range(3):
        fleet.address = replicas[n % 2]
        fleet.start_worker(
            f"w{n}",
            "--concurrency",
            "2",
            "--metrics-port",
            "0",
            env={"SEAMFILL_TEST_FETCH_DELAY": "0.15"},
        )
    return fleet


def _workers(fleet: Fleet) -> list[Proc]:
    return [p for p in fleet.procs if p.name.startswith("w")]


def _metrics(proc: Proc) -> str:
    port = re.search(r"metrics on :(\d+)", proc.stdout())
    assert port, proc.stdout()
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10) as r:
        text: str = r.read().decode()
    return text


def _chunks_done(fleet: Fleet, jobs: list[str]) -> int:
    from seamfill.v1 import admin_pb2, admin_pb2_grpc

    stub = admin_pb2_grpc.AdminStub(fleet.channel)
    return sum(
        stub.GetJob(admin_pb2.JobRequest(job_id=j), timeout=10).progress.chunks_done for j in jobs
    )


def _finish_and_check(fleet: Fleet, jobs: list[str], qdb: OwnQuestDB, table: str) -> None:
    done = common_pb2.JOB_STATE_DONE

    def finished() -> bool:
        states = [fleet.job_state(j) for j in jobs]
        bad = [s for s in states if s == common_pb2.JOB_STATE_FAILED]
        assert not bad, f"a job failed: {states}; dead letters {fleet.dead_letters('e2e.outage')}"
        return all(s == done for s in states)

    wait_for(finished, 240, "every job DONE after the outage", every=0.5)
    assert fleet.dead_letters("e2e.outage") == []
    rows = _sql(qdb.http, f'SELECT symbol, count(), count_distinct(ts) FROM "{table}" ORDER BY 1')
    assert rows == [[s, BARS, BARS] for s in SYMBOLS]


def _breaker_seen(fleet: Fleet, dependency: str) -> None:
    opened = [e for w in _workers(fleet) for e in w.events("seamless.breaker.opened")]
    closed = [e for w in _workers(fleet) for e in w.events("seamless.breaker.closed")]
    assert any(e["dependency"] == dependency for e in opened), opened
    assert any(e["dependency"] == dependency for e in closed), closed
    texts = [_metrics(w) for w in _workers(fleet)]
    opens = f'seamfill_worker_breaker_transitions_total{{dependency="{dependency}",state="open"}}'
    closes = opens.replace('"open"', '"closed"')
    assert any(opens in t for t in texts) and any(closes in t for t in texts)
    # Closed again everywhere once the backfill is over.
    gauge = f'seamfill_worker_breaker_open{{dependency="{dependency}"}} 1.0'
    assert not any(gauge in t for t in texts)


def test_questdb_killed_for_15s_mid_backfill_pauses_the_fleet_and_every_job_ends_done(
    tmp_path: Path, redis_url: str, key_prefix: str, unique: str, qdb: OwnQuestDB
) -> None:
    table = f"outage_{unique}"
    fleet = _fleet(tmp_path, redis_url, key_prefix, qdb.url, table)
    try:
        jobs = [fleet.ensure("e2e.outage", s, T0, T0 + BARS * MIN) for s in SYMBOLS]
        wait_for(lambda: _chunks_done(fleet, jobs) >= 10, 120, "the backfill under way")
        qdb.kill()
        time.sleep(15)  # the outage itself: nothing to poll for
        assert _chunks_done(fleet, jobs) < 3 * BARS // 60, "the outage did not hit the backfill"
        qdb.start()
        _finish_and_check(fleet, jobs, qdb, table)
        _breaker_seen(fleet, "storage")
    finally:
        fleet.close()


def test_upstream_503_for_15s_mid_backfill_pauses_the_fleet_and_every_job_ends_done(
    tmp_path: Path, redis_url: str, key_prefix: str, unique: str, qdb: OwnQuestDB
) -> None:
    table = f"upoutage_{unique}"
    fleet = _fleet(tmp_path, redis_url, key_prefix, qdb.url, table)
    try:
        jobs = [fleet.ensure("e2e.outage", s, T0, T0 + BARS * MIN) for s in SYMBOLS]
        wait_for(lambda: _chunks_done(fleet, jobs) >= 10, 120, "the backfill under way")
        (tmp_path / "state" / "outage_until").write_text(str(time.time() + 15))
        time.sleep(15)
        assert _chunks_done(fleet, jobs) < 3 * BARS // 60, "the outage did not hit the backfill"
        _finish_and_check(fleet, jobs, qdb, table)
        _breaker_seen(fleet, "upstream:scripted")
    finally:
        fleet.close()
