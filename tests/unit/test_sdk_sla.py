"""SLA budgets: the time a stage may still take is its own deadline capped by the total."""

from __future__ import annotations

import pytest

from seamfill.core.errors import ConfigError
from seamfill.sdk.sla import Budget, OnBreach, SLAPolicy


def test_remaining_is_capped_by_the_total() -> None:
    b = Budget(SLAPolicy(total_deadline_ms=1000, backfill_deadline_ms=300), started=100.0)
    assert b.remaining("backfill", 100.0) == pytest.approx(0.3)
    assert b.remaining("backfill", 100.9) == pytest.approx(0.1)
    assert b.binding_stage("backfill", 100.9) == "total"
    assert b.binding_stage("backfill", 100.0) == "backfill"
    assert b.remaining("backfill", 200.0) == 0.0


def test_no_deadline_means_none() -> None:
    b = Budget(SLAPolicy(total_deadline_ms=None, live_deadline_ms=None), started=0.0)
    assert b.remaining("live", 5.0) is None


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"total_deadline_ms": 0}, "total_deadline_ms"),
        ({"storage_deadline_ms": -1}, "storage"),
        ({"live_deadline_ms": 1.5}, "live_deadline_ms"),
        ({"on_breach": "panic"}, "on_breach"),
    ],
)
def test_bad_values_name_the_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        SLAPolicy(**kwargs)  # type: ignore[arg-type]


def test_mapping_presets_and_unknown_keys() -> None:
    p = SLAPolicy.from_mapping({"preset": "tolerant", "live_deadline_ms": 50})
    assert p.live_deadline_ms == 50 and p.on_breach is OnBreach.DOWNGRADE
    assert SLAPolicy.preset("strict").on_breach is OnBreach.RAISE
    with pytest.raises(ConfigError, match=r"sla\.total_ms"):
        SLAPolicy.from_mapping({"total_ms": 5})
    with pytest.raises(ConfigError, match="not one of strict, tolerant"):
        SLAPolicy.preset("relaxed")


def test_cutoff_names_the_deadline_that_fires_first_when_the_wait_starts() -> None:
    b = Budget(SLAPolicy(total_deadline_ms=1000, backfill_deadline_ms=500), started=0.0)
    assert b.cutoff("backfill", 0.01) == (0.5, "backfill")
    # The same question after the wait would wrongly answer "total".
    assert b.binding_stage("backfill", 0.51) == "total"
    assert b.cutoff("backfill", 0.6) == (pytest.approx(0.4), "total")


def test_cutoff_keeps_a_reserve_of_the_total_for_the_steps_after_the_wait() -> None:
    b = Budget(SLAPolicy(total_deadline_ms=200), started=0.0)
    timeout, stage = b.cutoff("backfill", 0.0, reserve=0.1)
    assert stage == "total" and timeout == pytest.approx(0.1)
    unbounded = Budget(SLAPolicy(total_deadline_ms=None, backfill_deadline_ms=None), started=0.0)
    assert unbounded.cutoff("backfill", 5.0, reserve=1.0) == (None, "backfill")
