"""TLS on the gRPC port: a grpcs:// client with the server's certificate talks to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from seamfill.core import errors
from seamfill.core.types import Series, TimeRange
from seamfill.sdk.client._coordinator import SyncCoordinatorClient
from tests.coordinator_fixtures import RunningCoordinator, self_signed_cert

pytestmark = pytest.mark.integration


def test_tls_round_trip(
    coordinator_factory: Callable[..., RunningCoordinator], tmp_path: Path
) -> None:
    cert, key = self_signed_cert(tmp_path)
    co = coordinator_factory(tls={"cert": str(cert), "key": str(key)})
    with SyncCoordinatorClient(
        f"grpcs://localhost:{co.port}", root_certificates=cert.read_bytes()
    ) as c:
        cov = c.get_coverage(Series(co.dataset, "BTC"), TimeRange(0, 3_600_000_000))
        assert cov.gaps == (TimeRange(0, 3_600_000_000),)
    with (
        SyncCoordinatorClient(co.address, timeout_s=3) as plain,
        pytest.raises(errors.CoordinatorUnavailable),
    ):
        plain.get_coverage(Series(co.dataset, "BTC"), TimeRange(0, 3_600_000_000))
