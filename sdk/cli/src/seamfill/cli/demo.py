"""``seamfill demo``: the whole product on one machine, from nothing.

Runs a coordinator and two workers as real processes against the local Redis and QuestDB
(``make services`` starts them), backfills 3 symbols x 7 days of 1-minute bars with a progress
bar, reads them back through the SDK, prints what it did and stops every process it started.
Running it twice leaves no duplicate rows: writes are idempotent and covered ranges are not
fetched again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from seamfill.core.errors import SeamfillError
from seamfill.core.types import Priority, Series, TimeRange

DATASET = "demo.ohlcv_1m"
TABLE = "demo_ohlcv_1m"
SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")
START_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
DAY_US = 86_400_000_000
MINUTE_US = 60_000_000

CONFIG = """\
redis_url: {redis_url}
key_prefix: "{key_prefix}"
lease_ttl_ms: 15000
max_attempts: 5
storage:
  default: {{http: "{questdb_url}", dsn: "{questdb_dsn}"}}
datasets:
  {dataset}:
    table: {table}
    source: synthetic
    interval: 1m
    chunk_bars: 720
    kind: bars
"""


class DemoError(SeamfillError):
    """The demo could not start one of its parts; the message says which and how to fix it."""


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[str]
    log: IO[str]


def _spawn(
    name: str, args: list[str], logdir: Path, ready: str, timeout_s: float = 30
) -> tuple[_Proc, re.Match[str]]:
    log_path = logdir / f"{name}.log"
    log = log_path.open("w+")
    popen = subprocess.Popen(
        [sys.executable, "-m", "seamfill.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        bufsize=1,
    )
    deadline = time.monotonic() + timeout_s
    assert popen.stdout is not None
    while time.monotonic() < deadline:
        line = popen.stdout.readline()
        if not line and popen.poll() is not None:
            break
        if m := re.search(ready, line):
            return _Proc(name, popen, log), m
    popen.kill()
    raise DemoError(f"{name} did not start within {timeout_s:.0f}s: see {log_path}")


def _stop(procs: list[_Proc], grace_s: float = 15) -> None:
    for p in procs:
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait()
        if p.popen.stdout:
            p.popen.stdout.close()
        p.log.close()


@contextlib.contextmanager
def _fleet(config: Path, logdir: Path, workers: int) -> Iterator[str]:
    procs: list[_Proc] = []
    try:
        coord, m = _spawn(
            "coordinator",
            ["coordinator", "serve", "--config", str(config), "--port", "0"],
            logdir,
            r"listening on (\S+)",
        )
        procs.append(coord)
        address = m.group(1)
        for i in range(workers):
            w, _ = _spawn(
                f"worker-{i + 1}",
                ["worker", "run", "--coordinator", address, "--id", f"demo-worker-{i + 1}"],
                logdir,
                r"worker \S+ started",
            )
            procs.append(w)
        yield address
    finally:
        _stop(procs)


def _fmt_ts(us: int) -> str:
    fmt = "%Y-%m-%d" if us % DAY_US == 0 else "%Y-%m-%d %H:%M"
    return time.strftime(fmt, time.gmtime(us / 1e6))


def _backfill(console: Console, address: str, days: int) -> float:
    """Ask for every demo series and show the fleet filling them; returns seconds taken."""
    from seamfill.sdk.client._coordinator import SyncCoordinatorClient

    rng = TimeRange(START_US, START_US + days * DAY_US)
    bars = rng.duration_us // MINUTE_US
    t0 = time.monotonic()
    with SyncCoordinatorClient(address) as client:
        jobs = {}
        for sym in SYMBOLS:
            job = client.ensure_range(
                Series(DATASET, sym), rng, Priority.BULK, requested_by="seamfill demo"
            )
            if job is not None:
                jobs[sym] = job.job_id
        already = len(SYMBOLS) - len(jobs)
        if already:
            console.print(f"{already} of {len(SYMBOLS)} series already covered: nothing to fetch")
        columns = (
            TextColumn("[bold]backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows  {task.fields[rate]:>8} rows/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        if not jobs:
            return time.monotonic() - t0
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("rows", total=len(jobs) * bars, rate="-")
            while jobs:
                states = [client.get_job(j) for j in jobs.values()]
                done = sum(min(s.progress.rows_done, bars) for s in states)
                elapsed = max(time.monotonic() - t0, 1e-6)
                progress.update(task, completed=done, rate=f"{done / elapsed:,.0f}")
                failed = [s for s in states if s.finished and s.state.value != "done"]
                if failed:
                    raise DemoError(
                        f"job {failed[0].job_id} ended {failed[0].state.value}: "
                        f"{failed[0].error or 'see the worker logs'}"
                    )
                if all(s.finished for s in states):
                    progress.update(task, completed=len(jobs) * bars)
                    break
                time.sleep(0.2)
    return time.monotonic() - t0


def _read_back(console: Console, address: str, questdb_url: str, days: int, name: str) -> None:
    from seamfill.sdk import SeamlessProvider
    from seamfill.sdk.settings import SeamlessSettings, Strategy

    settings = SeamlessSettings(
        coordinator_url=address, questdb_url=questdb_url, strategy=Strategy.FAIL_FAST
    )
    table = Table(title=f"read back through the SDK ({name})")
    for col in ("series", "rows", "covered range", "seconds"):
        table.add_column(col, justify="right" if col in ("rows", "seconds") else "left")
    with SeamlessProvider(settings) as provider:
        for sym in SYMBOLS:
            t0 = time.monotonic()
            result = provider.read(START_US, START_US + days * DAY_US, node_id=f"{DATASET}/{sym}")
            secs = time.monotonic() - t0
            covered = ", ".join(
                f"{_fmt_ts(r.start_us)} → {_fmt_ts(r.end_us)}" for r in result.meta.covered
            )
            table.add_row(
                f"{DATASET}/{sym}",
                f"{len(result.frame):,}",
                covered or "-",
                f"{secs:.2f}",
            )
    console.print(table)


def _count_rows(questdb_url: str, table: str) -> int:
    import json
    import urllib.parse
    import urllib.request

    q = urllib.parse.urlencode({"query": f'SELECT count() FROM "{table}"'})
    with urllib.request.urlopen(f"{questdb_url}/exec?{q}", timeout=30) as resp:
        return int(json.load(resp)["dataset"][0][0])


def _table_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,126}", value):
        raise click.BadParameter("use letters, digits and '_' (e.g. demo_ohlcv_1m)")
    return value


@click.command("demo")
@click.option(
    "--days",
    default=7,
    show_default=True,
    type=click.IntRange(1, 366),
    help="Days of 1-minute bars per symbol.",
)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option("--keep-logs", is_flag=True, help="Keep the processes' logs and print where.")
@click.option("--key-prefix", default="sfdemo:", show_default=True, help="Redis key prefix.")
@click.option(
    "--table", default=TABLE, show_default=True, callback=_table_name, help="QuestDB table to fill."
)
def demo(days: int, workers: int, keep_logs: bool, key_prefix: str, table: str) -> None:
    """Backfill 3 symbols of synthetic 1-minute bars with a real fleet, then read them back."""
    console = Console()
    redis_url = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
    questdb_url = os.environ.get("SEAMFILL_QUESTDB_URL", "http://127.0.0.1:9000").rstrip("/")
    questdb_dsn = os.environ.get(
        "SEAMFILL_QUESTDB_DSN", "postgresql://admin:quest@127.0.0.1:8812/qdb"
    )
    logdir = Path(tempfile.mkdtemp(prefix="seamfill-demo-"))
    config = logdir / "coordinator.yaml"
    config.write_text(
        CONFIG.format(
            redis_url=redis_url,
            questdb_url=questdb_url,
            questdb_dsn=questdb_dsn,
            dataset=DATASET,
            table=table,
            key_prefix=key_prefix,
        )
    )
    console.print(
        f"[bold]seamfill demo[/]: {len(SYMBOLS)} symbols x {days} days of 1-minute bars"
        f" -> QuestDB table {table}  (Redis {redis_url}, QuestDB {questdb_url})"
    )
    with _fleet(config, logdir, workers) as address:
        console.print(f"coordinator on {address}, {workers} workers running")
        secs = _backfill(console, address, days)
        console.print(f"backfill finished in {secs:.1f}s")
        _read_back(console, address, questdb_url, days, table)
    rows = _count_rows(questdb_url, table)
    console.print(
        f"QuestDB holds {rows:,} rows in {table}; every process the demo started has stopped."
    )
    if keep_logs:
        console.print(f"logs: {logdir}")
    else:
        for f in logdir.iterdir():
            f.unlink()
        logdir.rmdir()
