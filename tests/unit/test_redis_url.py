"""redis_url: the forms a coordinator accepts, and a precise error for every other."""

from __future__ import annotations

import pytest

from seamfill.coordinator.config import CoordinatorConfig
from seamfill.coordinator.redis_conn import (
    CLUSTER,
    SENTINEL,
    SINGLE,
    RedisURLError,
    parse_url,
    unavailable,
)
from seamfill.core.errors import ConfigError


def test_single_redis_keeps_its_url_and_needs_no_replica() -> None:
    t = parse_url("redis://h:6380/2")
    assert (t.kind, t.url, t.grant_replicas) == (SINGLE, "redis://h:6380/2", 0)
    assert parse_url("rediss://h:1/0").tls
    assert parse_url("unix:///tmp/r.sock").kind == SINGLE


def test_cluster_url_names_its_seeds_and_waits_for_one_replica_by_default() -> None:
    t = parse_url("redis+cluster://u:p%40ss@a:7100,b:7101,[::1]:7102")
    assert t.kind == CLUSTER
    assert t.nodes == (("a", 7100), ("b", 7101), ("::1", 7102))
    assert (t.username, t.password, t.grant_replicas, t.grant_wait_ms) == ("u", "p@ss", 1, 200)
    assert parse_url("rediss+cluster://a:1").tls


def test_sentinel_url_names_the_sentinels_the_master_and_the_db() -> None:
    t = parse_url("redis+sentinel://s1:26379,s2/mymaster/3?grant_replicas=2&grant_wait_ms=50")
    assert t.kind == SENTINEL
    assert t.nodes == (("s1", 26379), ("s2", 26379))
    assert (t.master, t.db, t.grant_replicas, t.grant_wait_ms) == ("mymaster", 3, 2, 50)


def test_options_are_stripped_from_a_single_redis_url() -> None:
    t = parse_url("redis://h:1/0?grant_replicas=1&health_check_interval=5")
    assert t.url == "redis://h:1/0?health_check_interval=5"
    assert t.grant_replicas == 1


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://h:1", "is not a Redis URL: write redis://HOST:PORT/DB, redis+cluster://"),
        ("redis+cluster://", "names no node"),
        ("redis+cluster://a:70000", "bad node 'a:70000': write each node as HOST:PORT"),
        ("redis+cluster://a:1,b:x", "bad node 'b:x'"),
        ("redis+cluster://a:1/2", "a Redis Cluster has only database 0; drop /DB"),
        ("redis+sentinel://s:26379", "names no master: write redis+sentinel://HOST:PORT/MASTER"),
        ("redis+sentinel://s:26379/m/x", "has path 'm/x': write /MASTER_NAME or /MASTER_NAME/DB"),
        ("redis+cluster://a:1?grant_replicas=one", "grant_replicas='one': give a whole number"),
        ("redis+cluster://a:1?grant_wait_ms=0", "grant_wait_ms=0 with grant_replicas > 0"),
    ],
)
def test_a_bad_url_is_refused_naming_the_part_and_the_fix(url: str, says: str) -> None:
    with pytest.raises(RedisURLError, match="redis_url") as e:
        parse_url(url)
    assert says in str(e.value)


def test_the_config_refuses_a_bad_url_naming_redis_url() -> None:
    with pytest.raises(
        ConfigError, match=r"^redis_url 'redis\+cluster://a:1/2' selects a database"
    ):
        CoordinatorConfig.from_mapping({"redis_url": "redis+cluster://a:1/2"}, env={})
    cfg = CoordinatorConfig.from_mapping({"redis_url": "redis+cluster://a:1,b:2"}, env={})
    assert cfg.redis_url == "redis+cluster://a:1,b:2"


@pytest.mark.parametrize(
    "reply",
    [
        "MOVED 13384 127.0.0.1:7103",
        "ASK 1 127.0.0.1:7101",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "READONLY You can't write against a read only replica.",
        "MASTERDOWN Link with MASTER is down",
    ],
)
def test_topology_replies_are_unavailable(reply: str) -> None:
    from redis.exceptions import ResponseError

    assert unavailable(ResponseError(reply))
    assert not unavailable(ResponseError("ERR wrong number of arguments"))
