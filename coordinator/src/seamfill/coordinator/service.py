"""gRPC edge of the coordinator: proto -> domain -> store, and domain errors -> status codes.

:data:`STATUS` is the one table mapping seamfill errors to gRPC status codes. The error's class
name travels in the trailing metadata ``seamfill-error`` so the client raises the same class.
Every RPC passes through :func:`rpc`, which checks the caller's role, times the call and turns
errors into statuses. The three servicers live in ``service_coverage``, ``service_leases`` and
``service_admin``.
"""

from __future__ import annotations

import enum
import functools
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from seamfill.coordinator import metrics
from seamfill.coordinator.config import AuthConfig, CoordinatorConfig
from seamfill.coordinator.leasing import Leasing
from seamfill.coordinator.limits import check_request
from seamfill.coordinator.notify import Hub
from seamfill.coordinator.registry import WorkerRegistry
from seamfill.coordinator.store import Store
from seamfill.core import errors
from seamfill.core.logs import log_event

log = logging.getLogger("seamfill.coordinator")

STATUS: dict[type[errors.SeamfillError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.CoordinatorUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.StorageError: grpc.StatusCode.UNAVAILABLE,
    errors.StorageRejected: grpc.StatusCode.FAILED_PRECONDITION,
    errors.SchemaMismatch: grpc.StatusCode.FAILED_PRECONDITION,
    errors.SeamlessSLAExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_for(e: errors.SeamfillError) -> grpc.StatusCode:
    """The status code of ``e``: its nearest class in :data:`STATUS`."""
    for cls in type(e).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.INTERNAL


class Role(enum.IntEnum):
    """Roles in increasing power: each may do what the ones before it may."""

    READER = 1
    WORKER = 2
    ADMIN = 3


class Auth:
    """Bearer-token check per role; open when no token is configured."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.enabled = cfg.enabled
        self._tokens = (
            [(t, Role.READER) for t in cfg.reader]
            + [(t, Role.WORKER) for t in cfg.worker]
            + [(t, Role.ADMIN) for t in cfg.admin]
        )

    def role_of(self, metadata: Any) -> Role | None:
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else str(value)
                scheme, _, token = text.partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return None
                best: Role | None = None
                for known, role in self._tokens:
                    # Compare every token in constant time: no early exit on a match.
                    if hmac.compare_digest(known.encode(), token.strip().encode()):
                        best = role if best is None else max(best, role)
                return best
        return None

    def check(self, context: grpc.aio.ServicerContext[Any, Any], needed: Role, method: str) -> None:
        if not self.enabled:
            return
        metadata = context.invocation_metadata()
        role = self.role_of(metadata)
        if role is None:
            sent = any(k == "authorization" for k, _ in metadata or ())
            fix = (
                "pass one with --token or SEAMFILL_TOKEN (workers: SEAMFILL_WORKER_TOKEN), "
                "from the coordinator's auth config"
            )
            if sent:
                raise errors.Unauthenticated(
                    f"{method}: the coordinator refused the bearer token sent (it matches no "
                    f"token of its auth config); {fix}"
                )
            raise errors.Unauthenticated(f"{method} needs a bearer token: {fix}")
        if role < needed:
            raise errors.PermissionDenied(
                f"{method} needs the {needed.name.lower()} role; this token has {role.name.lower()}"
            )


class Runtime:
    """What every servicer shares: config, store, lease transitions, notifications, auth."""

    def __init__(self, config: CoordinatorConfig, store: Store, hub: Hub) -> None:
        self.config = config
        self.store = store
        self.leasing = Leasing(store)
        self.hub = hub
        self.workers = WorkerRegistry(self.leasing, hub)
        self.auth = Auth(config.auth)
        self.started_us = store.clock()


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v.decode() if isinstance(v, bytes) else str(v)
    return ""


async def _abort(context: grpc.aio.ServicerContext[Any, Any], e: Exception, method: str) -> None:
    code, err = failed(e, method)
    context.set_trailing_metadata((("seamfill-error", type(err).__name__),))
    await context.abort(code, err.message)


def _internal(e: Exception) -> errors.SeamfillError:
    log.exception("unexpected error")
    return errors.SeamfillError(f"internal error: {type(e).__name__}: {e}")


def failed(e: Exception, method: str) -> tuple[grpc.StatusCode, errors.SeamfillError]:
    """The status and seamfill error a call that raised ``e`` is answered with (counted)."""
    err = e if isinstance(e, errors.SeamfillError) else _internal(e)
    code = status_for(err)
    metrics.RPC_ERRORS.labels(method, code.name).inc()
    if isinstance(err, errors.CoordinatorUnavailable):
        log_event(
            log,
            "seamless.coordinator.unavailable",
            logging.WARNING,
            method=method,
            error=err.message,
        )
    return code, err


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Ctx = grpc.aio.ServicerContext[Any, Any]
Unary = Callable[[S, Req, Ctx], Awaitable[Resp]]
Streaming = Callable[[S, Req, Ctx], AsyncIterator[Resp]]


class Servicer:
    """Base of the servicers: holds the runtime."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt


def rpc(role: Role) -> Callable[[Unary[S, Req, Resp]], Unary[S, Req, Resp]]:
    """Wrap a unary handler: role check, latency metric, errors -> status codes."""

    def deco(fn: Unary[S, Req, Resp]) -> Unary[S, Req, Resp]:
        method = fn.__name__
        latency = metrics.rpc_latency(method)

        @functools.wraps(fn)
        async def wrapper(self: S, request: Req, context: Ctx) -> Resp:
            t0 = time.perf_counter()
            try:
                self.rt.auth.check(context, role, method)  # type: ignore[attr-defined]
                check_request(request)
                return await fn(self, request, context)
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception as e:
                await _abort(context, e, method)
            finally:
                latency.observe(time.perf_counter() - t0)
            raise AssertionError("unreachable: abort raises")

        return wrapper

    return deco


def rpc_stream(role: Role) -> Callable[[Streaming[S, Req, Resp]], Streaming[S, Req, Resp]]:
    """Wrap a server-streaming handler like :func:`rpc`."""

    def deco(fn: Streaming[S, Req, Resp]) -> Streaming[S, Req, Resp]:
        method = fn.__name__

        @functools.wraps(fn)
        async def wrapper(self: S, request: Req, context: Ctx) -> AsyncIterator[Resp]:
            try:
                self.rt.auth.check(context, role, method)  # type: ignore[attr-defined]
                check_request(request)
                async for item in fn(self, request, context):
                    yield item
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception as e:
                await _abort(context, e, method)

        return wrapper

    return deco
