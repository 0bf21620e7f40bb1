"""A dataset's optional symbol rule: a symbol of another form is refused, naming the rule."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
import redis

from seamfill.coordinator.config import CoordinatorConfig
from seamfill.core.errors import ConfigError
from seamfill.v1 import common_pb2, coverage_pb2, coverage_pb2_grpc
from tests.coordinator_fixtures import TEST_DATASET, RunningCoordinator, test_dataset_spec

HOUR = 3_600_000_000
RULE = "[A-Z0-9]+/[A-Z0-9]+"
pytestmark = pytest.mark.integration


def test_a_symbol_off_the_datasets_rule_is_refused_naming_the_rule_and_changes_nothing(
    coordinator_factory: Callable[..., RunningCoordinator],
) -> None:
    spec = {**test_dataset_spec(), "symbol_pattern": RULE}
    c = coordinator_factory(datasets={TEST_DATASET: spec})
    r = redis.Redis.from_url(c.redis_url)
    try:
        series = common_pb2.Series(dataset=TEST_DATASET, symbol="BTC USDT")
        span = common_pb2.TimeRange(start_us=0, end_us=HOUR)
        with grpc.insecure_channel(c.address) as ch:
            stub = coverage_pb2_grpc.CoverageStub(ch)
            with pytest.raises(grpc.RpcError) as info:
                stub.EnsureRange(coverage_pb2.EnsureRangeRequest(series=series, range=span))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "symbol_pattern" in info.value.details() and RULE in info.value.details()
            assert list(r.scan_iter(match=c.key_prefix + "*")) == []
            ok = common_pb2.Series(dataset=TEST_DATASET, symbol="BTC/USDT")
            stub.EnsureRange(coverage_pb2.EnsureRangeRequest(series=ok, range=span))
    finally:
        r.close()


def test_a_symbol_rule_that_is_not_a_regular_expression_is_a_config_error() -> None:
    spec = {**test_dataset_spec(), "symbol_pattern": "[A-Z"}
    with pytest.raises(ConfigError, match="symbol_pattern"):
        CoordinatorConfig.from_mapping({"datasets": {TEST_DATASET: spec}}, env={})
