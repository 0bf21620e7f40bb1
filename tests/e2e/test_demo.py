"""`seamfill demo` end to end: real coordinator and worker processes, real Redis and QuestDB."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _count(questdb_url: str, sql: str) -> int:
    q = urllib.parse.urlencode({"query": sql})
    with urllib.request.urlopen(f"{questdb_url}/exec?{q}", timeout=30) as resp:
        return int(json.load(resp)["dataset"][0][0])


def _demo(key_prefix: str, table: str, redis_url: str, questdb_url: str) -> str:
    env = dict(
        os.environ, SEAMFILL_REDIS_URL=redis_url, SEAMFILL_QUESTDB_URL=questdb_url, COLUMNS="120"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seamfill.cli.main",
            "demo",
            "--key-prefix",
            key_prefix,
            "--table",
            table,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_demo_backfills_reads_back_and_twice_leaves_no_duplicates(
    redis_url: str, questdb_url: str, key_prefix: str, unique: str
) -> None:
    table = f"demo_{unique}"
    try:
        out = _demo(key_prefix, table, redis_url, questdb_url)
        for sym in ("BTC-USDT", "ETH-USDT", "SOL-USDT"):
            line = next(ln for ln in out.splitlines() if f"demo.ohlcv_1m/{sym}" in ln)
            assert "10,080" in line, out
        assert "QuestDB holds 30,240 rows" in out
        # A second run with a fresh coordinator state fetches and writes everything again:
        # idempotent writes must leave exactly the same rows.
        out2 = _demo(key_prefix + "again:", table, redis_url, questdb_url)
        assert "QuestDB holds 30,240 rows" in out2, out2
        assert _count(questdb_url, f'SELECT count() FROM "{table}"') == 30_240
        distinct = _count(
            questdb_url, f'SELECT count() FROM (SELECT DISTINCT ts, symbol FROM "{table}")'
        )
        assert distinct == 30_240
        # Third run against the same state: everything is already covered.
        out3 = _demo(key_prefix, table, redis_url, questdb_url)
        assert "already covered" in out3
    finally:
        urllib.request.urlopen(
            f"{questdb_url}/exec?"
            + urllib.parse.urlencode({"query": f'DROP TABLE IF EXISTS "{table}"'}),
            timeout=30,
        ).close()


def test_cli_lists_every_group() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seamfill.cli.main", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for group in ("admin", "coordinator", "demo", "health", "worker"):
        assert f"  {group}" in proc.stdout, proc.stdout


def test_unknown_command_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seamfill.cli.main", "no-such-group"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no-such-group" in proc.stderr


def _grpcurl() -> str:
    found = shutil.which("grpcurl") or str(Path.home() / "go/bin/grpcurl")
    if not Path(found).exists():
        msg = "grpcurl not installed: go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return found


def test_grpcurl_lists_the_services(coordinator) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [_grpcurl(), "-plaintext", coordinator.address, "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    services = set(proc.stdout.split())
    assert {
        "seamfill.v1.Coverage",
        "seamfill.v1.Leases",
        "seamfill.v1.Admin",
        "grpc.health.v1.Health",
    } <= services, proc.stdout
