"""One SQL-literal quoter and one table-name rule behind every query the packages write."""

from __future__ import annotations

import pytest

from seamfill.coordinator.config import CoordinatorConfig
from seamfill.core import _sql
from seamfill.core.errors import InvalidArgument
from seamfill.core.types import Dataset
from seamfill.sdk.backfill import _wal, sink
from seamfill.sdk.read import storage

MIN = 60_000_000


def test_every_module_quotes_literals_with_the_one_quoter() -> None:
    assert storage.sql_string is _sql.quote_literal
    assert sink.quote_literal is _sql.quote_literal
    assert _wal.quote_literal is _sql.quote_literal


@pytest.mark.parametrize("text", ["it's", "a''b", "back\\slash", "new\nline", "€😀", ""])
def test_a_literal_round_trips_as_questdb_reads_it(text: str) -> None:
    quoted = _sql.quote_literal(text)
    # QuestDB's reading of a literal: strip the outer quotes, '' is one quote, nothing else.
    assert quoted[0] == quoted[-1] == "'" and quoted[1:-1].replace("''", "'") == text
    assert "'" not in quoted[1:-1].replace("''", "")


def test_nul_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        _sql.quote_literal("a\x00b")


def _accepted_by_reader(name: str) -> bool:
    try:
        storage.sql_table(name)
    except InvalidArgument:
        return False
    return True


def _accepted_by_sink(name: str) -> bool:
    try:
        sink.create_table_sql(Dataset("d.s", name, "synthetic", MIN))
    except InvalidArgument:
        return False
    return True


def _accepted_by_config(name: str) -> bool:
    spec = {"table": name, "source": "synthetic", "interval": "1m"}
    try:
        CoordinatorConfig.from_mapping({"datasets": {"d.s": spec}}, env={})
    except InvalidArgument:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ohlcv_1m", True),
        ("_t", True),
        ("T" * 127, True),
        ("T" * 128, False),
        ("a.b", False),
        ("a-b", False),
        ("1abc", False),
        ('a"b', False),
        ("", False),
        ("a b", False),
    ],
)
def test_reader_sink_and_config_follow_one_table_rule(name: str, valid: bool) -> None:
    assert (_accepted_by_reader(name), _accepted_by_sink(name), _accepted_by_config(name)) == (
        valid,
        valid,
        valid,
    )
