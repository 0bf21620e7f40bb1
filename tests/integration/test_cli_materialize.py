"""``seamfill materialize`` as a real process against the real QuestDB."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sdk_support import T0, drop_table

pytestmark = pytest.mark.integration

HOUR = 3_600_000_000


@pytest.fixture
def table(questdb_url: str, unique: str) -> Iterator[str]:
    name = f"climat_{unique}"
    yield name
    drop_table(questdb_url, name)


def seamfill(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamfill.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_materialize_run_then_nothing_then_list(
    questdb_url: str, table: str, tmp_path: Path
) -> None:
    import os

    config = tmp_path / "seamfill.yaml"
    config.write_text(
        f"seamless:\n  questdb_url: {questdb_url}\n  table: {table}\n  dataset: {table}\n"
        "  interval: 1h\n  strategy: auto_backfill\n  fetcher: synthetic\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
    out = tmp_path / "artifacts"
    common = ["--start", str(T0), "--end", str(T0 + 48 * HOUR), "--out", str(out)]
    common += ["--config", str(config), "--json"]
    first = seamfill("materialize", "run", "A/USD", "B/USD", *common, env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["rows_written"] == 96 and len(report["written"]) == 2
    second = seamfill("materialize", "run", "A/USD", "B/USD", *common, env=env)
    assert json.loads(second.stdout) | {"skipped": []} == {
        "written": [],
        "skipped": [],
        "rows_written": 0,
    }
    listed = seamfill("materialize", "list", str(out), "--json", env=env)
    assert sorted(m["symbol"] for m in json.loads(listed.stdout)) == ["A/USD", "B/USD"]
    bad = seamfill("materialize", "run", "A/USD", *common[:-1], "--as-of", "soon", env=env)
    # A malformed time is a usage error (exit 2) that names the option and the accepted forms.
    assert bad.returncode == 2 and "'--as-of'" in bad.stderr and "ISO-8601" in bad.stderr
