"""Pure modules import no I/O stack: no redis, grpc, questdb, psycopg or asyncio.

Each module is imported in a fresh interpreter, so what another test imported cannot hide a
dependency. Time, where a pure module needs it, comes in as an argument.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = (
    "seamfill.core.ranges",
    "seamfill.core.types",
    "seamfill.core.errors",
    "seamfill.core.timeconv",
    "seamfill.sdk.quality.conformance",
    "seamfill.sdk.quality.fingerprint",
    "seamfill.sdk.sla",
    "seamfill.sdk.settings",
    "seamfill.sdk.result",
    "seamfill.sdk.read.cache",
    "seamfill.sdk.read.storage",
    "seamfill.sdk.read.live",
)
FORBIDDEN = ("redis", "grpc", "questdb", "psycopg", "asyncio")


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io_stack(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"


def test_the_check_can_fail() -> None:
    code = f"import sys, asyncio; print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "asyncio"


@pytest.mark.parametrize(
    "module",
    [
        "seamfill.sdk.provider",
        "seamfill.sdk.compat",
        "seamfill.sdk.backfill._fleet",
        "seamfill.sdk.backfill.inline",
        "seamfill.sdk.backfill.chunk",
        "seamfill.sdk.backfill.sink",
    ],
)
def test_reading_needs_no_ilp_client(module: str) -> None:
    """The ``questdb`` ILP client is the ``ilp`` extra: only a write (inline backfill) loads it."""
    code = f"import sys, {module}; print('questdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
