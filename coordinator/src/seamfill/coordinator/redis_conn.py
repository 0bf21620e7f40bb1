"""Which Redis the coordinator talks to, chosen by ``redis_url``, and how commands reach it.

``redis_url`` is one of::

    redis://[USER:PASSWORD@]HOST:PORT[/DB]        one Redis (rediss:// for TLS, unix:///path.sock)
    redis+cluster://[USER:PASSWORD@]H1:P1,H2:P2   a Redis Cluster, by any of its nodes (seeds)
    redis+sentinel://[USER:PASSWORD@]H1:P1[,H2:P2]/MASTER_NAME[/DB]   Redis with Sentinel
    rediss+cluster://…  rediss+sentinel://…       the same over TLS

and may end in ``?grant_replicas=N&grant_wait_ms=MS`` (see :class:`RedisTarget`). The clients are
redis-py's asyncio ``Redis``, ``RedisCluster`` (routes each command by its keys' slot, follows
MOVED/ASK, refreshes the slot map and reconnects) and ``Sentinel`` (asks the Sentinels for the
current master on every new connection), all with hiredis parsing. Every key one call uses is in
one dataset's hash-tag slot (see :mod:`.keys`), so a script or a pipeline is one node's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SlaveNotFoundError
from redis.backoff import ExponentialWithJitterBackoff

SINGLE, CLUSTER, SENTINEL = "single", "cluster", "sentinel"
_SCHEMES = {
    "redis": (SINGLE, False),
    "rediss": (SINGLE, True),
    "unix": (SINGLE, False),
    "redis+cluster": (CLUSTER, False),
    "rediss+cluster": (CLUSTER, True),
    "redis+sentinel": (SENTINEL, False),
    "rediss+sentinel": (SENTINEL, True),
}
_OPTIONS = ("grant_replicas", "grant_wait_ms")
_FORMS = (
    "redis://HOST:PORT/DB, redis+cluster://HOST:PORT,HOST:PORT or "
    "redis+sentinel://HOST:PORT[,HOST:PORT]/MASTER_NAME"
)


class RedisURLError(ValueError):
    """``redis_url`` cannot be used; the message names what is wrong and the fix."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed ``redis_url``."""

    kind: str
    """``single``, ``cluster`` or ``sentinel``."""
    url: str
    """For ``single``: the URL redis-py opens (without this module's options)."""
    nodes: tuple[tuple[str, int], ...] = ()
    """Cluster seed nodes, or the Sentinels."""
    master: str = ""
    """Sentinel: the name of the monitored master."""
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None
    grant_replicas: int = 0
    """Replicas that must hold a grant before it is handed out (``WAIT``): fencing across a
    failover. Default 1 on a cluster or with Sentinel, 0 on one Redis."""
    grant_wait_ms: int = 200
    """How long a grant may wait for those replicas; past it the call fails as UNAVAILABLE."""


def _fail(url: str, why: str) -> RedisURLError:
    return RedisURLError(f"redis_url {url!r} {why}")


def _hosts(url: str, netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    out = []
    for part in netloc.split(","):
        host, sep, port = part.rpartition(":")
        if not sep:
            host, port = part, str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _fail(url, f"has a bad node {part!r}: write each node as HOST:PORT")
        out.append((host, int(port)))
    return tuple(out)


def _options(url: str, query: str, kind: str) -> tuple[int, int]:
    """(grant_replicas, grant_wait_ms) from the URL's query."""
    opts = {"grant_replicas": 0 if kind == SINGLE else 1, "grant_wait_ms": 200}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in _OPTIONS:
            continue
        if not value.isdigit():
            raise _fail(url, f"has {name}={value!r}: give a whole number >= 0")
        opts[name] = int(value)
    if opts["grant_replicas"] > 0 and opts["grant_wait_ms"] == 0:
        raise _fail(url, "has grant_wait_ms=0 with grant_replicas > 0: give a wait in ms >= 1")
    return opts["grant_replicas"], opts["grant_wait_ms"]


def _strip_options(url: str) -> str:
    base, _, query = url.partition("?")
    kept = [f"{k}={v}" for k, v in parse_qsl(query, keep_blank_values=True) if k not in _OPTIONS]
    return base + ("?" + "&".join(kept) if kept else "")


def parse_url(url: str) -> RedisTarget:
    """``redis_url`` as a :class:`RedisTarget`; :class:`RedisURLError` names what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _SCHEMES:
        raise _fail(url, f"is not a Redis URL: write {_FORMS}")
    kind, tls = _SCHEMES[scheme]
    rest, _, query = rest.partition("?")
    replicas, wait_ms = _options(url, query, kind)
    opts: dict[str, Any] = {"grant_replicas": replicas, "grant_wait_ms": wait_ms}
    if kind == SINGLE:
        return RedisTarget(kind, _strip_options(url), tls=tls, **opts)
    netloc, _, path = rest.partition("/")
    user: str | None = None
    password: str | None = None
    if "@" in netloc:
        cred, _, netloc = netloc.rpartition("@")
        u, has_pw, pw = cred.partition(":")
        user, password = (unquote(u) or None), (unquote(pw) if has_pw else None)
    if not netloc:
        raise _fail(url, "names no node: write HOST:PORT[,HOST:PORT] after the scheme")
    segments = [s for s in path.split("/") if s]
    if kind == CLUSTER:
        nodes = _hosts(url, netloc, 6379)
        if segments and segments != ["0"]:
            raise _fail(url, "selects a database: a Redis Cluster has only database 0; drop /DB")
        return RedisTarget(kind, url, nodes, tls=tls, username=user, password=password, **opts)
    nodes = _hosts(url, netloc, 26379)
    if not segments:
        raise _fail(url, "names no master: write redis+sentinel://HOST:PORT/MASTER_NAME")
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise _fail(url, f"has path {path!r}: write /MASTER_NAME or /MASTER_NAME/DB")
    db = int(segments[1]) if len(segments) == 2 else 0
    return RedisTarget(
        kind, url, nodes, unquote(segments[0]), db, tls, user, password, replicas, wait_ms
    )


def _retry() -> Retry:
    # A failover takes a few seconds: a call retries briefly, then fails as UNAVAILABLE and the
    # caller (whose deadline this is not) retries with its own backoff.
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3)


_COMMON: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
}


def connect(target: RedisTarget) -> Any:
    """The asyncio client for ``target`` (``Redis`` or ``RedisCluster``; typed loosely, as
    redis-py types replies as bytes | str while decode_responses gives str)."""
    if target.kind == CLUSTER:
        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.nodes],
            username=target.username,
            password=target.password,
            ssl=target.tls,
            retry=_retry(),
            **_COMMON,
        )
    if target.kind == SENTINEL:
        auth = {"username": target.username, "password": target.password}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs={"socket_connect_timeout": 2, "socket_timeout": 2},
            ssl=target.tls,
            **auth,
        )
        return sentinel.master_for(
            target.master,
            redis_class=aioredis.Redis,
            db=target.db,
            retry=_retry(),
            health_check_interval=30,
            **_COMMON,
        )
    return aioredis.Redis.from_url(target.url, retry=_retry(), health_check_interval=30, **_COMMON)


# Replies that mean "this node cannot serve the call now, another will shortly": a cluster
# resharding or failing over, a replica promoted, a master demoted, a node still loading.
_UNAVAILABLE_REPLIES = (
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MASTERDOWN",
    "READONLY",
    "LOADING",
    "NOREPLICAS",
    "UNBLOCKED",
)
_UNAVAILABLE_ERRORS = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.BusyLoadingError,
    rexc.ClusterError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.MovedError,
    rexc.AskError,
    rexc.ReadOnlyError,
    rexc.MasterDownError,
    MasterNotFoundError,
    SlaveNotFoundError,
    OSError,
)


def unavailable(e: BaseException) -> bool:
    """Is ``e`` an error a retry soon will not meet (topology change, failover, outage)?"""
    if isinstance(e, _UNAVAILABLE_ERRORS):
        return True
    return isinstance(e, rexc.ResponseError) and str(e).startswith(_UNAVAILABLE_REPLIES)


class GrantNotReplicated(rexc.ConnectionError):
    """A grant's write was not acknowledged by the replicas ``redis_url`` asks for in time."""


class Commands:
    """Commands of the coordinator over its client: one at a time, several in one round trip,
    or a write followed by ``WAIT`` on the same connection (a durable grant)."""

    def __init__(self, client: Any, target: RedisTarget) -> None:
        self.client = client
        self.target = target
        self.cluster = isinstance(client, RedisCluster)

    async def execute(self, *args: Any) -> Any:
        return await self.client.execute_command(*args)

    async def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """``commands`` in one pipeline (one round trip per node; each command atomic on its
        own); the first error is raised once every reply is in."""
        if len(commands) == 1:
            return [await self.client.execute_command(*commands[0])]
        async with self.client.pipeline(transaction=False) as p:
            for args in commands:
                p.execute_command(*args)
            return list(await p.execute())

    async def durable(self, key: str, *args: Any) -> Any:
        """Run write ``args`` (routed by ``key``) and return its reply only once the replicas
        ``grant_replicas`` asks for hold it (``WAIT`` on the same connection). A master with
        fewer replicas in sync cannot grant: a replica promoted without the write would issue
        the same token again."""
        need, wait_ms = self.target.grant_replicas, self.target.grant_wait_ms
        if need <= 0:
            return await self.client.execute_command(*args)
        if self.cluster:
            reply, acked = await self._on_primary(key, args, ("WAIT", need, wait_ms))
        else:
            async with self.client.pipeline(transaction=False) as p:
                p.execute_command(*args)
                p.execute_command("WAIT", need, wait_ms)
                reply, acked = await p.execute()
        if int(acked) < need:
            raise GrantNotReplicated(
                f"{acked} of {need} replica(s) acknowledged a grant within {wait_ms} ms: the "
                "master's replica is down, lagging or resyncing (grants resume when it is "
                "back); retry. With no replicas at all, set grant_replicas=0 in redis_url"
            )
        return reply

    async def _on_primary(self, key: str, *commands: tuple[Any, ...]) -> list[Any]:
        """``commands`` on one connection to the primary of ``key``'s slot, not redirected:
        a WAIT must run where the write ran. A redirect or a broken link refreshes the slot
        map and fails the call (the caller retries)."""
        node = self.client.get_node_from_key(key)
        conn = node.acquire_connection()
        try:
            await conn.send_packed_command(conn.pack_commands(commands))
            return [await conn.read_response() for _ in commands]
        except BaseException as e:
            await conn.disconnect()  # replies may be left unread: never reuse it
            if isinstance(e, rexc.MovedError | rexc.AskError | rexc.ConnectionError | OSError):
                await self.client.nodes_manager.initialize()
            raise
        finally:
            node.release(conn)

    async def close(self) -> None:
        await self.client.aclose()
