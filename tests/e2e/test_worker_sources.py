"""Upstream failures, kline dump directories and hostile symbols, through the real fleet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seamfill.v1 import common_pb2
from tests.e2e.worker_support import MIN, T0, Fleet, sql, wait_for

pytestmark = pytest.mark.e2e

HOUR = 60 * MIN
JAN, FEB, MAR, APR = (T0, 1_706_745_600_000_000, 1_709_251_200_000_000, 1_711_929_600_000_000)
HOSTILE = [
    "a,b c=d",
    'q"uote',
    "it's; DROP TABLE x; --",
    "new\nline",
    "back\\slash",
    "ünï €/😀",
    "{hash}tag",
    "BTC/USDT:USDT",
]


@pytest.fixture
def fleet(tmp_path: Path, redis_url: str, questdb_url: str, key_prefix: str) -> Iterator[Fleet]:
    f = Fleet(tmp_path, redis_url, questdb_url, key_prefix)
    yield f
    f.close()


@pytest.fixture
def table(unique: str, questdb_url: str) -> Iterator[str]:
    name = f"wsrc_{unique}"
    yield name
    sql(questdb_url, f'DROP TABLE IF EXISTS "{name}"')


def _done(fleet: Fleet, job: str) -> bool:
    return fleet.job_state(job) == common_pb2.JOB_STATE_DONE


def test_429_is_deferred_and_succeeds_400_lands_in_dead_letters_with_its_reason(
    fleet: Fleet, table: str, tmp_path: Path, questdb_url: str
) -> None:
    ds = "e2e.scripted"
    state = tmp_path / "state"
    state.mkdir()
    fleet.start_coordinator(
        {
            ds: {
                "table": table,
                "source": "scripted",
                "interval": "1m",
                "chunk_bars": 60,
                "options": {"state_dir": str(state)},
            }
        }
    )
    w = fleet.start_worker("w1")
    flaky = fleet.ensure(ds, "FLAKY-1", T0, T0 + 60 * MIN)
    bad = fleet.ensure(ds, "BAD-1", T0, T0 + 60 * MIN)
    wait_for(lambda: _done(fleet, flaky), 60, "the 429 chunk to succeed on retry")
    dead = wait_for(lambda: fleet.dead_letters(ds), 60, "the 400 chunk in dead letters")
    assert [c.series.symbol for c in dead] == ["BAD-1"]
    assert "400 Bad Request" in dead[0].last_error and "BAD-1" in dead[0].last_error
    assert dead[0].attempts == 1  # terminal: no retries spent on it
    assert fleet.job_state(bad) != common_pb2.JOB_STATE_DONE
    failed = w.events("seamless.backfill.failed")
    assert [(e["retryable"], "400" in e["reason"]) for e in failed] == [(False, True)]
    assert failed[0]["reason"].startswith("chunk fault (terminal) ")
    # The 429 is the upstream's state, not the chunk's: given back with no attempt spent.
    deferred = w.events("seamless.backfill.deferred")
    assert deferred and all("429" in e["reason"] for e in deferred)
    assert {e["dependency"] for e in deferred} == {"upstream:scripted"}
    assert sql(questdb_url, f'SELECT symbol, count() FROM "{table}"') == [["FLAKY-1", 60]]


def _month(folder: Path, name: str, start: int, end: int) -> None:
    lines = [
        f"{t // 1000},1.0,2.0,0.5,1.5,10.0,{t // 1000 + 3_599_999},0,0,0,0,0"
        for t in range(start, end, HOUR)
    ]
    (folder / name).write_text("\n".join(lines) + "\n")


def test_files_missing_month_and_corrupt_file_fail_with_their_reasons(
    fleet: Fleet, table: str, tmp_path: Path, questdb_url: str
) -> None:
    root = tmp_path / "dump"
    folder = root / "BTCUSDT"
    folder.mkdir(parents=True)
    _month(folder, "BTCUSDT-1h-2024-01.csv", JAN, FEB)
    # February was never downloaded; March is cut off mid-line.
    (folder / "BTCUSDT-1h-2024-03.csv").write_text("1709251200000,1.0,2.0,0.5,1.5,10.0\n170925")
    ds = "e2e.files_1h"
    fleet.start_coordinator(
        {
            ds: {
                "table": table,
                "source": "files",
                "interval": "1h",
                "chunk_bars": 24 * 7,
                "options": {"root": str(root)},
            }
        },
        max_attempts=2,
    )
    fleet.start_worker("w1")
    job = fleet.ensure(ds, "BTCUSDT", JAN, APR)
    covered_jan = lambda: fleet.gaps(ds, "BTCUSDT", JAN, FEB) == []  # noqa: E731
    wait_for(covered_jan, 60, "January to be covered")

    def both_reasons() -> list[Any] | None:
        dead = fleet.dead_letters(ds)
        errors = [c.last_error for c in dead]
        missing = any("BTCUSDT-1h-2024-02" in e and "no file" in e for e in errors)
        corrupt = any("BTCUSDT-1h-2024-03.csv is corrupt" in e for e in errors)
        return dead if missing and corrupt else None

    dead = wait_for(both_reasons, 60, "a February chunk (missing) and a March chunk (corrupt)")
    assert all(c.attempts == 1 for c in dead)
    assert fleet.job_state(job) != common_pb2.JOB_STATE_DONE
    assert sql(questdb_url, f'SELECT count() FROM "{table}"') == [[744]]


def test_hostile_symbols_round_trip_through_the_fleet(
    fleet: Fleet, table: str, questdb_url: str
) -> None:
    ds = "e2e.hostile"
    fleet.start_coordinator(
        {ds: {"table": table, "source": "synthetic", "interval": "1m", "chunk_bars": 30}}
    )
    fleet.start_worker("w1")
    jobs = [fleet.ensure(ds, s, T0, T0 + 60 * MIN) for s in HOSTILE]
    wait_for(lambda: all(_done(fleet, j) for j in jobs), 60, "every hostile symbol's job")
    got = sql(questdb_url, f'SELECT symbol, count() FROM "{table}"')
    assert sorted(got) == sorted([s, 60] for s in HOSTILE)
