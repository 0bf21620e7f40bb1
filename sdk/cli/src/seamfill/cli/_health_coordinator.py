"""``seamfill health``'s coordinator check: ``grpc.health.v1`` Check, in plaintext or over TLS.

The address takes the forms the SDK's client accepts (``host:port``, ``grpc://``, ``grpcs://``,
``https://``); ``--tls`` turns TLS on for a bare ``host:port``. Over TLS the certificate is
verified against ``--ca-file`` when given, else gRPC's default roots (which
``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` replaces, as the Helm chart does in worker pods). A failed
handshake is told apart from an absent coordinator, so the fix names the real problem: an
untrusted certificate, a name the certificate does not list, or TLS on one side only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from seamfill.cli._health_checks import Failed, Result, run_check
from seamfill.core.errors import ConfigError
from seamfill.sdk.client._types import parse_address

__all__ = ["Coordinator", "check_coordinator"]

_ROOTS_ENV = "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"
_NOT_RUNNING = (
    "start it with `seamfill coordinator serve --config FILE --port PORT`, or point "
    "--coordinator / SEAMFILL_COORDINATOR at a running one"
)


@dataclass(frozen=True, slots=True)
class Coordinator:
    """How to reach the coordinator."""

    address: str
    """``host:port``, ``grpc://host:port``, ``grpcs://host:port`` or ``https://host[:port]``."""
    token: str | None = None
    """Bearer token sent with the check, if any."""
    tls: bool = False
    """Use TLS even when the address has no ``grpcs://`` / ``https://`` scheme."""
    ca_file: str | None = None
    """PEM file of the CA(s) to verify the coordinator's certificate against."""


def check_coordinator(c: Coordinator, timeout: float) -> Result:
    """The coordinator answers SERVING on ``grpc.health.v1``."""
    return run_check("coordinator", lambda: _probe(c, timeout))


def _probe(c: Coordinator, timeout: float) -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        target, secure = parse_address(c.address, c.tls)
    except ConfigError as e:
        raise Failed(e.message, "write it as HOST:PORT, or grpcs://HOST:PORT for TLS") from e
    md = [("authorization", f"Bearer {c.token}")] if c.token else None
    if secure:
        creds = grpc.ssl_channel_credentials(root_certificates=_roots(c.ca_file))
        channel = grpc.secure_channel(target, creds)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout, metadata=md
            )
        except grpc.RpcError as e:
            code = e.code().name if hasattr(e, "code") else "UNKNOWN"
            details = e.details() if hasattr(e, "details") else ""
            raise _explain(target, secure, c.ca_file, code, details or "") from e
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if status != "SERVING":
        raise Failed(
            f"{target} is {status}", "it is starting, draining or has lost Redis: see its logs"
        )
    if not secure:
        return f"{target} SERVING"
    return f"{target} SERVING over TLS (certificate verified against {_roots_name(c.ca_file)})"


def _roots(ca_file: str | None) -> bytes | None:
    if not ca_file:
        return None
    try:
        with open(ca_file, "rb") as f:
            return f.read()
    except OSError as e:
        raise Failed(
            f"--ca-file {ca_file} cannot be read: {e.strerror or e}",
            "pass the PEM file of the CA that signed the coordinator's certificate",
        ) from e


def _roots_name(ca_file: str | None) -> str:
    if ca_file:
        return ca_file
    if os.environ.get(_ROOTS_ENV):
        return f"{_ROOTS_ENV}={os.environ[_ROOTS_ENV]}"
    return "gRPC's default roots"


def _explain(target: str, secure: bool, ca_file: str | None, code: str, details: str) -> Failed:
    """The failure as the operator needs it: gRPC says UNAVAILABLE for all of these."""
    if "CERTIFICATE_VERIFY_FAILED" in details:
        why = details.split("CERTIFICATE_VERIFY_FAILED", 1)[1].strip(": ").removesuffix(": OK")
        return Failed(
            f"{target}'s TLS certificate is not trusted ({why or 'verification failed'}; "
            f"checked against {_roots_name(ca_file)})",
            "pass --ca-file with the PEM of the CA that signed the coordinator's certificate "
            f"(or set {_ROOTS_ENV} to it)",
        )
    if "Hostname Verification" in details or "Peer name" in details:
        return Failed(
            f"{target}'s TLS certificate does not list the name {target.rsplit(':', 1)[0]}",
            "connect by a name the certificate lists (its subjectAltName), or reissue the "
            "certificate with this name",
        )
    if "WRONG_VERSION_NUMBER" in details:
        return Failed(
            f"{target} does not speak TLS ({code})",
            f"use grpc://{target} (plaintext), or turn TLS on at the coordinator",
        )
    if not secure and "Socket closed" in details:
        return Failed(
            f"{target} closed the plaintext connection ({code})",
            f"if the coordinator serves TLS, use grpcs://{target} (or --tls); otherwise "
            + _NOT_RUNNING,
        )
    return Failed(f"{target} did not answer the health check ({code})", _NOT_RUNNING)
