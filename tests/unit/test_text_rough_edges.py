"""Text views without rough edges: symbols shown unambiguously, no ETA for paused or cancelled
jobs, rich markup in data shown as text."""

from __future__ import annotations

import pytest
from rich.console import Console

from seamfill.cli import render as _render
from seamfill.core.types import Coverage, Job, JobProgress, JobState, Priority, Series, TimeRange

H = 3_600_000_000
HOSTILE = ["a,b", "a b", "a\tb", "new\nline", 'say "hi"', "it's", "x=y", " lead", "[red]x[/red]"]


def _text(renderable: object, width: int = 200) -> str:
    console = Console(record=True, width=width)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("symbol", HOSTILE)
def test_coverage_text_view_shows_a_hostile_symbol_quoted_as_json_does(symbol: str) -> None:
    import json

    cov = Coverage(
        Series("d.x", symbol), TimeRange(0, 2 * H), (TimeRange(0, H),), (TimeRange(H, 2 * H),)
    )
    head = _text(_render.coverage_view(cov, 40)).splitlines()[0]
    assert head.startswith("d.x/" + json.dumps(symbol, ensure_ascii=False) + "  ")


@pytest.mark.parametrize("symbol", ["BTC-USDT", "BTC/USDT", "ES.FUT", "éé"])
def test_plain_symbols_stay_unquoted(symbol: str) -> None:
    cov = Coverage(Series("d.x", symbol), TimeRange(0, H), (TimeRange(0, H),), ())
    assert _text(_render.coverage_view(cov, 40)).startswith(f"d.x/{symbol}  ")


def _job(state: JobState) -> Job:
    return Job(
        job_id="d.x:j1",
        series=Series("d.x", "a,b"),
        range=TimeRange(0, 2 * H),
        priority=Priority.NORMAL,
        state=state,
        progress=JobProgress(chunks_total=10, chunks_done=4, eta_seconds=90.0),
    )


@pytest.mark.parametrize("state", [JobState.PAUSED, JobState.CANCELLED])
def test_paused_and_cancelled_jobs_show_no_eta(state: JobState) -> None:
    for view in (_render.jobs_table([_job(state)]), _render.job_view(_job(state))):
        out = _text(view)
        assert "1m30s" not in out and "1m" not in out.split("eta")[-1][:20]


def test_running_job_shows_its_eta_and_a_quoted_symbol() -> None:
    out = _text(_render.jobs_table([_job(JobState.RUNNING)]))
    assert "1m30s" in out
    assert 'd.x/"a,b"' in out


@pytest.mark.parametrize("command", [[], ["coverage"], ["backfill"], ["jobs"]])
def test_help_says_what_series_and_time_look_like(command: list[str]) -> None:
    from click.testing import CliRunner

    from seamfill.cli.admin import admin

    out = CliRunner().invoke(admin, [*command, "--help"], terminal_width=200)
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    assert "SERIES is DATASET/SYMBOL, e.g. demo.ohlcv_1m/BTC-USDT" in text
    assert "TIME is ISO-8601" in text and "2024-01-31T12:00:00Z" in text


def test_a_config_type_error_names_the_key_path() -> None:
    from seamfill.coordinator.config import CoordinatorConfig
    from seamfill.core.errors import ConfigError

    spec = {"table": "t", "source": "synthetic", "interval": "1m", "chunk_bars": "lots"}
    with pytest.raises(ConfigError) as e:
        CoordinatorConfig.from_mapping({"datasets": {"demo.ohlcv_1m": spec}}, env={})
    assert e.value.message.startswith("datasets.demo.ohlcv_1m.chunk_bars: 'lots' must be")
