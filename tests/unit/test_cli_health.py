"""Pure parts of ``seamfill health``: the series it expects exist, and how results read."""

from __future__ import annotations

from seamfill.cli._health_checks import EXPECTED_SERIES, Result, redact
from seamfill.cli.health import render
from tests.unit.test_dashboards import exported_series


def test_expected_series_are_ones_the_code_exports() -> None:
    exported = exported_series()
    for component, names in EXPECTED_SERIES.items():
        for name in names:
            # A histogram's HELP line carries its base name; its samples add suffixes.
            assert name in exported or f"{name}_bucket" in exported, (component, name)


def test_render_one_line_per_check_with_the_fix_on_failure() -> None:
    lines = render(
        [
            Result("config", None, "no file given", "pass --config"),
            Result("redis", False, "redis://h:1/0 is not reachable", "start Redis"),
            Result("questdb-http", True, "answered 204"),
        ]
    )
    assert lines[0] == "SKIP config        no file given -> to check: pass --config"
    assert lines[1] == "FAIL redis         redis://h:1/0 is not reachable -> fix: start Redis"
    assert lines[2] == "OK   questdb-http  answered 204"


def test_passwords_are_not_printed() -> None:
    assert redact("postgresql://admin:quest@h:8812/qdb") == "postgresql://admin:***@h:8812/qdb"
    assert redact("postgresql://h:8812/qdb") == "postgresql://h:8812/qdb"
