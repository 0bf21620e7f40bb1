"""Pure modules import no I/O stack: no redis, grpc, questdb, psycopg or asyncio.

Each module is imported in a fresh interpreter, so what another test imported cannot hide a
dependency. Time, where a pure module needs it, comes in as an argument.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = (
    "ranges",
    "types",
    "errors",
    "conformance",
    "sla",
    "settings",
    "fingerprint",
    "timeconv",
    "cache",
    "result",
    "storage",
    "live",
)
FORBIDDEN = ("redis", "grpc", "questdb", "psycopg", "asyncio")


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io_stack(module: str) -> None:
    code = (
        f"import sys, seamfill.sdk.{module}; "
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"seamfill.sdk.{module} imports {out.stdout.strip()}"


def test_the_check_can_fail() -> None:
    code = f"import sys, asyncio; print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "asyncio"


@pytest.mark.parametrize("module", ["provider", "compat", "_fleet", "inline", "backfill", "sink"])
def test_reading_needs_no_ilp_client(module: str) -> None:
    """The ``questdb`` ILP client is the ``ilp`` extra: only a write (inline backfill) loads it."""
    code = f"import sys, seamfill.sdk.{module}; print('questdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
