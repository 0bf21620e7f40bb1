"""Values the coordinator client returns, address parsing, and RpcError -> seamfill error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from seamfill.core import errors
from seamfill.core.types import (
    DatasetStats,
    Directive,
    Lease,
    LeaseStatus,
    Stats,
    TimeRange,
    WorkerInfo,
)
from seamfill.core.types import LeaseProgress as Progress

__all__ = [
    "AcquireResult",
    "DatasetStats",
    "Directive",
    "FailResult",
    "HeartbeatResult",
    "LeaseStatus",
    "Progress",
    "ReconcileResult",
    "Stats",
    "WorkerInfo",
    "error_from_rpc",
    "error_from_status",
    "parse_address",
]


@dataclass(frozen=True, slots=True)
class AcquireResult:
    leases: tuple[Lease, ...]
    ttl_ms: int
    drain: bool = False


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    statuses: tuple[LeaseStatus, ...]
    ttl_ms: int
    drain: bool = False


@dataclass(frozen=True, slots=True)
class FailResult:
    attempts: int
    dead_lettered: bool
    retry_at_us: int


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    covered: tuple[TimeRange, ...]
    removed: tuple[TimeRange, ...]
    added: tuple[TimeRange, ...]
    rows: int


def parse_address(address: str, tls: bool = False) -> tuple[str, bool]:
    """(``host:port``, use TLS) of a coordinator address in any accepted form."""
    text = address.strip()
    for scheme, secure, default_port in (
        ("grpcs://", True, 443),
        ("https://", True, 443),
        ("grpc://", False, 50051),
        ("http://", False, 80),
    ):
        if text.startswith(scheme):
            rest = text[len(scheme) :].rstrip("/")
            if not rest:
                break
            host_port = rest if ":" in rest.rsplit("]", 1)[-1] else f"{rest}:{default_port}"
            return host_port, secure or tls
    else:
        if text and "://" not in text and ":" in text:
            return text, tls
    raise errors.ConfigError(
        f"coordinator address {address!r} is not host:port, grpc://host:port, grpcs://host:port "
        "or https://host[:port]: e.g. 127.0.0.1:50051"
    )


def check_token_transport(target: str, secure: bool, token: str | None, allow: bool) -> None:
    """Refuse to send a bearer token in plaintext beyond this machine unless ``allow`` (then
    warn): anyone on the path could read it and act with its role."""
    if not token or secure:
        return
    host = target.rsplit(":", 1)[0].strip("[]")
    if _loopback(host):
        return
    if not allow:
        raise errors.ConfigError(
            f"a bearer token would go in plaintext to {host}: use grpcs:// (TLS), or opt in "
            "with allow_plaintext_token (--allow-plaintext-token, "
            "SEAMFILL_ALLOW_PLAINTEXT_TOKEN=true) on a network you trust"
        )
    import logging

    from seamfill.core.logs import log_event

    log_event(
        logging.getLogger("seamfill.sdk.client"),
        "seamless.token.plaintext",
        logging.WARNING,
        host=host,
        reason="allow_plaintext_token is set: the bearer token is sent without TLS",
    )


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def error_from_rpc(e: grpc.aio.AioRpcError) -> errors.SeamfillError:
    name = ""
    trailing: Any = e.trailing_metadata() or ()
    for key, value in trailing:
        if key == "seamfill-error":
            name = value.decode() if isinstance(value, bytes) else str(value)
    return error_from_status(e.code(), e.details() or "", name)


def error_from_status(code: grpc.StatusCode, details: str, name: str) -> errors.SeamfillError:
    """The seamfill error of a failed call: class ``name`` if known, else by status code."""
    cls = errors.by_name(name) if name else None
    if cls is None or cls is errors.FetchError:
        cls = errors.BY_CODE_NAME.get(code.name, errors.SeamfillError)
    details = details or code.name
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) and not name:
        details = f"coordinator unavailable ({code.name}): {details}"
    return cls(details)
