"""``seamfill admin`` without a server: argument parsing, usage errors and rendering."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from seamfill.cli import render as _render
from seamfill.cli.admin import TIME, admin
from seamfill.core.types import (
    Coverage,
    Job,
    JobProgress,
    JobState,
    Priority,
    Series,
    TimeRange,
)

H = 3_600_000_000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["coverage", "no-slash"], "DATASET/SYMBOL"),
        (["coverage", "d/s", "--start", "2024-13-45"], "ISO-8601"),
        (["backfill", "d/s", "--start", "01/02/2024", "--end", "2024-03-01"], "YYYYMMDD"),
        (["backfill", "d/s", "--start", "2024-01-02", "--end", "2024-01-01"], "not after"),
        (["backfill", "d/s", "--start", "2024-01-01"], "--end"),
        (["backfill", "d/s", "--start", "1", "--end", "2", "--priority", "urgent"], "urgent"),
        (["dead-letters", "chunk-1"], "only taken with --requeue"),
        (["jobs", "--state", "sleeping"], "sleeping"),
        (["top", "--interval", "0"], "interval"),
    ],
)
def test_usage_errors_exit_2_before_any_call(args: list[str], needle: str) -> None:
    # Port 1 never answers: a usage error must be raised before the client connects.
    result = CliRunner().invoke(admin, ["--coordinator", "127.0.0.1:1", *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output


def test_times_are_iso_or_epoch_microseconds() -> None:
    assert TIME.convert("1704067200000000", None, None) == 1_704_067_200_000_000
    assert TIME.convert("2024-01-01", None, None) == 1_704_067_200_000_000
    assert TIME.convert("2024-01-01T01:00:00Z", None, None) == 1_704_067_200_000_000 + H
    assert TIME.convert("20240101", None, None) == 1_704_067_200_000_000  # a date


def test_timeline_shows_a_small_gap_in_a_long_range() -> None:
    span = TimeRange(0, 1000 * H)
    gap = TimeRange(500 * H, 501 * H)
    text = _render.timeline(
        span, [TimeRange(0, 500 * H), TimeRange(501 * H, 1000 * H)], [gap], width=20
    )
    assert text.plain == "█" * 10 + "░" + "█" * 9
    assert _render.timeline(span, [], [], [span], [], width=4).plain == "▒▒▒▒"
    assert _render.timeline(span, [span], width=3).plain == "███"


def test_durations_and_counts_read_short() -> None:
    assert [_render.duration(v) for v in (5, 5_000, 5_500_000, 250 * 10**6, 2 * H, 50 * H)] == [
        "5us",
        "5ms",
        "5.5s",
        "4m10s",
        "2h",
        "2d02h",
    ]
    assert _render.duration(0) == "0s" and _render.duration(60 * 10**6) == "1m"
    assert [_render.count(v) for v in (12, 9_999, 12_345, 2_500_000)] == [
        "12",
        "9,999",
        "12.35k",
        "2.50M",
    ]
    assert _render.iso(1_704_067_200_000_000) == "2024-01-01T00:00:00Z"
    assert _render.iso(1_704_067_200_000_001) == "2024-01-01T00:00:00.000001Z"


def _job() -> Job:
    return Job(
        "j1",
        Series("d.x", "BTC/USDT"),
        TimeRange(0, 2 * H),
        Priority.BULK,
        JobState.RUNNING,
        JobProgress(10, 4, 0, 2, 4000, 1234.5, 12.0),
    )


def test_json_form_of_domain_values_parses() -> None:
    doc = json.loads(_render.dumps([_job()]))
    assert doc[0]["series"] == {"dataset": "d.x", "symbol": "BTC/USDT"}
    assert doc[0]["priority"] == "bulk" and doc[0]["state"] == "running"
    assert doc[0]["range"]["end"] == "1970-01-01T02:00:00Z"
    assert doc[0]["progress"]["rows_per_second"] == 1234.5


def test_views_render_without_error() -> None:
    console = Console(record=True, width=160)
    cov = Coverage(
        Series("d.x", "S"),
        TimeRange(0, 4 * H),
        (TimeRange(0, H),),
        (TimeRange(H, 4 * H),),
        queued=(TimeRange(H, 2 * H),),
    )
    console.print(_render.coverage_view(cov, 40))
    console.print(_render.jobs_table([_job()]))
    console.print(_render.job_view(_job()))
    out = console.export_text()
    assert "25.0% covered" in out and "1 gaps" in out
    assert "40%" in out and "4/10" in out and "1,234.5" in out and "bulk" in out


def test_a_token_is_not_sent_in_plaintext_to_a_remote_host() -> None:
    result = CliRunner().invoke(
        admin, ["--coordinator", "10.1.2.3:50051", "--token", "secret", "jobs"]
    )
    assert result.exit_code != 0
    assert "plaintext" in str(result.exception or result.output)


@pytest.mark.parametrize(
    ("address", "allow", "refused"),
    [
        ("10.1.2.3:50051", False, True),
        ("coordinator.example:50051", False, True),
        ("grpcs://coordinator.example:50051", False, False),
        ("127.0.0.1:50051", False, False),
        ("[::1]:50051", False, False),
        ("localhost:50051", False, False),
        ("10.1.2.3:50051", True, False),
    ],
)
def test_bearer_tokens_go_over_tls_or_to_loopback_unless_opted_in(
    address: str, allow: bool, refused: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from seamfill.core.errors import ConfigError
    from seamfill.sdk.client._types import check_token_transport, parse_address

    target, secure = parse_address(address)
    if refused:
        with pytest.raises(ConfigError, match="plaintext"):
            check_token_transport(target, secure, "secret", allow)
        return
    check_token_transport(target, secure, "secret", allow)
    warned = any("seamless.token.plaintext" in r.getMessage() for r in caplog.records)
    assert warned is allow
