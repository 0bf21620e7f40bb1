"""Credentials with URL- and ILP-special characters reach QuestDB intact, for writes and reads.

Against a QuestDB of the test's own started with ``http.user``/``http.password`` (and the
PGWire pair) set, so a wrong password is refused by the server, not taken on trust.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from seamfill.core.errors import StorageError
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.fetchers import SyntheticFetcher
from seamfill.sdk.backfill.sink import QuestDBSink
from seamfill.sdk.read.storage import StorageReader
from tests.own_questdb import PG, OwnQuestDB, own_questdb

pytestmark = pytest.mark.integration

MIN = 60_000_000
T0 = 1_700_000_000_000_000 // MIN * MIN
USER = "seam@fill"
PASSWORD = "p@ss;word=x;%41%"  # '@', ';', '=' and a literal "%41" (not "A") in it


@pytest.fixture(scope="module")
def qdb() -> Iterator[OwnQuestDB]:
    with own_questdb(USER, PASSWORD) as server:
        yield server


async def test_a_password_with_at_semicolon_and_percent_writes_over_ilp_and_reads_over_http(
    qdb: OwnQuestDB, unique: str
) -> None:
    assert "%25" in qdb.url and "%3B" in qdb.url  # percent-encoded in the URL, as users write it
    ds = Dataset("creds.bars", f"creds_{unique}", "synthetic", MIN)
    series, rng = Series(ds.name, "BTC"), TimeRange(T0, T0 + 30 * MIN)
    frame = await SyntheticFetcher().fetch(series, rng, ds)
    sink = QuestDBSink(qdb.url, visibility_timeout_s=20)
    try:
        rows = await sink.write(ds, "BTC", frame)
        await sink.wait_visible(ds, "BTC", rng, rows)
    finally:
        await sink.aclose()
    read = await asyncio.to_thread(StorageReader.from_url(qdb.url).read_bars, ds.table, "BTC", rng)
    assert rows == 30 and len(read) == 30
    with psycopg.connect(
        host="127.0.0.1", port=PG, user=USER, password=PASSWORD, dbname="qdb"
    ) as conn:
        assert conn.execute(f'SELECT count() FROM "{ds.table}"').fetchone() == (30,)


async def test_a_wrong_password_is_refused_by_the_server(qdb: OwnQuestDB) -> None:
    wrong = qdb.url.replace("%40ss", "%40sx")
    with pytest.raises(StorageError):
        await asyncio.to_thread(StorageReader.from_url(wrong).exec, "SELECT 1")
