"""TLS on the gRPC port: a grpcs:// client with the server's certificate talks to it."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from seamfill.sdk import errors
from seamfill.sdk._client import SyncCoordinatorClient
from seamfill.sdk.types import Series, TimeRange
from tests.coordinator_fixtures import RunningCoordinator

pytestmark = pytest.mark.integration


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_round_trip(
    coordinator_factory: Callable[..., RunningCoordinator], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
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
