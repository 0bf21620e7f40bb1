"""Bounds on every field of every request, checked in one place before a handler runs.

Every RPC (unary, streaming, and each call inside a lease Session) passes its request through
:func:`check_request` first, so no oversized value reaches Redis (a 1 MB ``worker_id`` used to
become a 1 MB key name) and no error message echoes one back: messages quote at most
:data:`SHOWN` characters of a bad value. Field-specific rules (a range's order, a worker id's
NUL) stay with their handlers; this is the outer fence every field has.

A request whose bytes do not decode reaches the handler as :data:`UNDECODABLE` (see
:func:`safe_deserializer`) and is answered INVALID_ARGUMENT instead of gRPC's UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from seamfill.core.errors import InvalidArgument

__all__ = ["SHOWN", "UNDECODABLE", "DecodeGuard", "check_request", "safe_deserializer", "shown"]

SHOWN = 40
"""Characters of a bad value an error message quotes."""
_DEFAULT_CHARS = (
    1024  # above the handlers own, finer rules (a symbol's 256), which keep their errors
)
# Longer or shorter than the default, by field name (the same name means the same thing in
# every message of the contract).
_CHARS = {
    "worker_id": 256,
    "lease_id": 1024,
    "job_id": 1024,
    "chunk_id": 1024,
    "reason": 8192,
    "requested_by": 256,
    "published_by": 256,
    "sha256": 64,
    "fingerprint": 64,
    "traceparent": 256,
}
_DEFAULT_ITEMS = 10_000
_STRING = FieldDescriptor.TYPE_STRING
_BYTES = FieldDescriptor.TYPE_BYTES
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


class _Undecodable:
    """Stands for a request whose bytes are not the message the method takes."""

    def __init__(self, error: str) -> None:
        self.error = error


UNDECODABLE = _Undecodable
"""The type a :func:`safe_deserializer` hands on for bytes that do not decode."""


def shown(value: str | bytes) -> str:
    """``value`` quoted by at most :data:`SHOWN` characters."""
    text = value if isinstance(value, str) else value[:SHOWN].decode("utf-8", "replace")
    return repr(text[:SHOWN] + ("..." if len(text) > SHOWN else ""))


def safe_deserializer(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserialize``, but bytes that do not decode become an :data:`UNDECODABLE` value."""

    def run(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, ValueError, TypeError) as e:
            return _Undecodable(f"{type(e).__name__}: {e}"[:200])

    return run


def check_request(request: Any) -> None:
    """Raise :class:`InvalidArgument` naming the first field of ``request`` out of bounds."""
    if isinstance(request, _Undecodable):
        raise InvalidArgument(
            f"the request's bytes are not a valid message for this method ({request.error}): "
            "send the method's request message"
        )
    if isinstance(request, Message):
        _check(request, "")


def _check(message: Message, prefix: str) -> None:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        repeated = field.is_repeated
        values = list(value) if repeated else [value]
        if repeated and len(values) > _DEFAULT_ITEMS:
            raise InvalidArgument(
                f"{path} has {len(values)} entries: send at most {_DEFAULT_ITEMS} per request"
            )
        if field.type in (_STRING, _BYTES):
            limit = _CHARS.get(field.name, _DEFAULT_CHARS)
            for v in values:
                if len(v) > limit:
                    raise InvalidArgument(
                        f"{path} is {len(v)} characters long (starts {shown(v)}): at most {limit}"
                    )
        elif field.type == _MESSAGE and not _is_map(field):
            for i, v in enumerate(values):
                _check(v, f"{path}[{i}]." if repeated else f"{path}.")


def _is_map(field: FieldDescriptor) -> bool:
    kind = field.message_type
    return kind is None or bool(kind.GetOptions().map_entry)


if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class DecodeGuard(_Interceptor):
    """Gives seamfill's unary and server-streaming methods a :func:`safe_deserializer`, so
    bytes that are not the request message reach :func:`check_request` (INVALID_ARGUMENT)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler = await continuation(details)
        method = getattr(details, "method", "") or ""
        if handler is None or not method.startswith("/seamfill.v1."):
            return handler
        if handler.request_deserializer is None:
            return handler
        safe = safe_deserializer(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                handler.unary_unary,
                request_deserializer=safe,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                handler.unary_stream,
                request_deserializer=safe,
                response_serializer=handler.response_serializer,
            )
        return handler
