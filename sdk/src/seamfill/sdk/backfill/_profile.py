"""Deployment-profile checks: a ``prod`` provider needs a coordinator that answers SERVING; a
coordinator configured but away may mean filling gaps here (``on_coordinator_unavailable``).

The check is the standard ``grpc.health.v1.Health/Check`` on the provider's own channel, called
by its method path with the request and answer written as their (tiny) wire form, so the SDK
needs no health-checking library.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import grpc

from seamfill.core.errors import CoordinatorUnavailable
from seamfill.core.logs import log_event

if TYPE_CHECKING:
    from seamfill.sdk.client._coordinator import CoordinatorClient
    from seamfill.sdk.read._steps import ReadState
    from seamfill.sdk.settings import SeamlessSettings

logger = logging.getLogger("seamfill.sdk.provider")

_CHECK = "/grpc.health.v1.Health/Check"
_SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}


async def serving(client: CoordinatorClient, timeout: float) -> str:
    """``""`` when the coordinator answers SERVING within ``timeout``, else why not."""
    call = client._channel.unary_unary(
        _CHECK, request_serializer=lambda _: b"", response_deserializer=lambda raw: raw
    )
    try:
        answer = await asyncio.wait_for(call(b"", timeout=timeout), timeout)
    except (grpc.aio.AioRpcError, TimeoutError) as e:
        detail = e.details() if isinstance(e, grpc.aio.AioRpcError) else "no answer"
        return f"health check failed: {detail}"
    return "" if answer == _SERVING else f"health status is not SERVING ({answer!r})"


async def require_coordinator(client: CoordinatorClient, address: str, timeout: float) -> None:
    """Raise :class:`CoordinatorUnavailable` unless the coordinator answers SERVING."""
    why = await serving(client, timeout)
    if why:
        log_event(
            logger,
            "seamless.coordinator.unavailable",
            logging.ERROR,
            profile="prod",
            address=address,
            error=why,
        )
        raise CoordinatorUnavailable(
            f"profile prod needs a healthy coordinator at {address}: {why}; start it, fix "
            "coordinator_url, or use profile default"
        )


def inline_when_away(settings: SeamlessSettings, has_fetcher: bool, st: ReadState) -> bool:
    """Whether a read whose coordinator is away fills its gaps in this process (the setting
    says so and there is a fetcher); says so in the log and the result's reason."""
    if settings.on_coordinator_unavailable != "inline" or not has_fetcher:
        return False
    st.note("gaps filled inline in this process (coordinator unavailable; leases skipped)")
    log_event(
        logger,
        "seamless.backfill.inline",
        logging.WARNING,
        dataset=st.series.dataset,
        gaps=len(st.gaps),
        message="coordinator configured but unavailable: filling gaps in this process "
        "with the provider's fetcher, single flight, without leases",
    )
    return True
