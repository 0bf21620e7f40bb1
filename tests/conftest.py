"""Shared fixtures: addresses of the real services and per-test isolation.

Integration and e2e tests talk to a real Redis and a real QuestDB (``make services`` starts them).
Each test gets its own key prefix and table names, so ``pytest -n auto`` is safe. When a server
cannot be reached the test is skipped locally, but fails under CI (``CI=true``), where
``.ci/run`` starts them and a missing server is a broken run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

pytest_plugins = ["tests.coordinator_fixtures"]

REDIS_URL = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
QUESTDB_URL = os.environ.get("SEAMFILL_QUESTDB_URL", "http://127.0.0.1:9000")
QUESTDB_DSN = os.environ.get("SEAMFILL_QUESTDB_DSN", "postgresql://admin:quest@127.0.0.1:8812/qdb")
# A second QuestDB with the server's stock connection limits (2 concurrent /exp exports on a
# 2-core machine), which `make services` also starts: reads must hold up against it too.
STOCK_QUESTDB_URL = os.environ.get("SEAMFILL_STOCK_QUESTDB_URL", "http://127.0.0.1:9200")
STOCK_QUESTDB_DSN = os.environ.get(
    "SEAMFILL_STOCK_QUESTDB_DSN", "postgresql://admin:quest@127.0.0.1:9012/qdb"
)


def _reachable(url: str, default_port: int) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), 1.0):
            return True
    except OSError:
        return False


def _need(url: str, port: int, what: str) -> None:
    if _reachable(url, port):
        return
    msg = f"{what} is not reachable at {url}: run `make services` (or set the SEAMFILL_* address)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def redis_url() -> str:
    _need(REDIS_URL, 6379, "Redis")
    return REDIS_URL


@pytest.fixture
def questdb_url() -> str:
    _need(QUESTDB_URL, 9000, "QuestDB (HTTP)")
    return QUESTDB_URL


@pytest.fixture
def questdb_dsn() -> str:
    _need(QUESTDB_DSN, 8812, "QuestDB (PGWire)")
    return QUESTDB_DSN


@pytest.fixture
def stock_questdb() -> tuple[str, str]:
    """(HTTP URL, PGWire DSN) of the QuestDB with stock connection limits."""
    _need(STOCK_QUESTDB_URL, 9200, "QuestDB with stock limits (HTTP)")
    _need(STOCK_QUESTDB_DSN, 9012, "QuestDB with stock limits (PGWire)")
    return STOCK_QUESTDB_URL, STOCK_QUESTDB_DSN


@pytest.fixture
def unique() -> str:
    """A short name unique to this test: use it in key prefixes and table names."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def key_prefix(unique: str, redis_url: str) -> Iterator[str]:
    """A Redis key prefix owned by this test; its keys are deleted afterwards."""
    prefix = f"sftest:{unique}:"
    yield prefix
    import redis

    r = redis.Redis.from_url(redis_url)
    try:
        batch = []
        for k in r.scan_iter(match=prefix + "*", count=1000):
            batch.append(k)
            if len(batch) >= 500:
                r.delete(*batch)
                batch.clear()
        if batch:
            r.delete(*batch)
    finally:
        r.close()
