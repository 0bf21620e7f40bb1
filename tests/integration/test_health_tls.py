"""``seamfill health`` against a real TLS coordinator (self-signed certificate, port 0): it passes
when the certificate is trusted, and otherwise says what is wrong and how to fix it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from seamfill.cli.health import health
from tests.coordinator_fixtures import RunningCoordinator, self_signed_cert

pytestmark = pytest.mark.integration

SEAMFILL = str(Path(sys.executable).with_name("seamfill"))


@pytest.fixture
def tls_coordinator(
    coordinator_factory: Callable[..., RunningCoordinator], tmp_path: Path
) -> tuple[RunningCoordinator, Path]:
    cert, key = self_signed_cert(tmp_path)
    return coordinator_factory(tls={"cert": str(cert), "key": str(key)}), cert


def coordinator_check(redis_url: str, questdb_url: str, questdb_dsn: str, *args: str) -> Any:
    """The coordinator line of ``seamfill health --json`` (the other services real, healthy)."""
    result = CliRunner().invoke(
        health,
        [
            "--redis-url",
            redis_url,
            "--questdb-url",
            questdb_url,
            "--questdb-dsn",
            questdb_dsn,
            "--key-prefix",
            "sftest:health:",
            "--timeout",
            "3",
            "--json",
            *args,
        ],
    )
    doc = json.loads(result.output)
    check = next(c for c in doc["checks"] if c["name"] == "coordinator")
    assert result.exit_code == (0 if check["ok"] else 1), result.output
    return check


def test_trusted_tls_coordinator_is_serving(
    tls_coordinator: tuple[RunningCoordinator, Path],
    redis_url: str,
    questdb_url: str,
    questdb_dsn: str,
) -> None:
    co, cert = tls_coordinator
    services = (redis_url, questdb_url, questdb_dsn)
    by_scheme = coordinator_check(
        *services, "--coordinator", f"grpcs://localhost:{co.port}", "--ca-file", str(cert)
    )
    assert by_scheme["ok"] is True, by_scheme
    assert by_scheme["detail"] == (
        f"localhost:{co.port} SERVING over TLS (certificate verified against {cert})"
    )
    by_flag = coordinator_check(
        *services, "--coordinator", co.address, "--tls", "--ca-file", str(cert)
    )
    assert by_flag["ok"] is True and "SERVING over TLS" in by_flag["detail"], by_flag


def test_untrusted_certificate_names_the_fix(
    tls_coordinator: tuple[RunningCoordinator, Path],
    tmp_path: Path,
    redis_url: str,
    questdb_url: str,
    questdb_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", raising=False)
    co, _ = tls_coordinator
    services = (redis_url, questdb_url, questdb_dsn)
    address = f"grpcs://localhost:{co.port}"

    default_roots = coordinator_check(*services, "--coordinator", address)
    assert default_roots["ok"] is False
    assert "TLS certificate is not trusted" in default_roots["detail"]
    assert "gRPC's default roots" in default_roots["detail"]
    assert default_roots["fix"].startswith("pass --ca-file with the PEM of the CA")

    other_ca, _ = self_signed_cert(tmp_path, "other")
    wrong_ca = coordinator_check(*services, "--coordinator", address, "--ca-file", str(other_ca))
    assert wrong_ca["ok"] is False and "not trusted" in wrong_ca["detail"]
    assert str(other_ca) in wrong_ca["detail"] and "--ca-file" in wrong_ca["fix"]

    missing = coordinator_check(
        *services, "--coordinator", address, "--ca-file", str(tmp_path / "nope.pem")
    )
    assert missing["ok"] is False and "cannot be read" in missing["detail"]


def test_tls_on_one_side_only_is_named(
    tls_coordinator: tuple[RunningCoordinator, Path],
    coordinator: RunningCoordinator,
    redis_url: str,
    questdb_url: str,
    questdb_dsn: str,
) -> None:
    co, cert = tls_coordinator
    services = (redis_url, questdb_url, questdb_dsn)
    plain_to_tls = coordinator_check(*services, "--coordinator", co.address)
    assert plain_to_tls["ok"] is False
    assert f"use grpcs://{co.address}" in plain_to_tls["fix"], plain_to_tls

    tls_to_plain = coordinator_check(
        *services, "--coordinator", f"grpcs://{coordinator.address}", "--ca-file", str(cert)
    )
    assert tls_to_plain["ok"] is False and "does not speak TLS" in tls_to_plain["detail"]
    assert f"use grpc://{coordinator.address}" in tls_to_plain["fix"], tls_to_plain


def test_the_command_trusts_grpcs_roots_from_the_environment(
    tls_coordinator: tuple[RunningCoordinator, Path],
    redis_url: str,
    questdb_url: str,
    questdb_dsn: str,
) -> None:
    """As in a worker pod of the chart with TLS on: the CA comes from gRPC's own variable,
    read when the process starts, so this runs the real command."""
    co, cert = tls_coordinator
    out = subprocess.run(
        [
            SEAMFILL,
            "health",
            "--coordinator",
            f"grpcs://localhost:{co.port}",
            "--redis-url",
            redis_url,
            "--questdb-url",
            questdb_url,
            "--questdb-dsn",
            questdb_dsn,
            "--key-prefix",
            "sftest:health:",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(cert)},
    )
    line = next(x for x in out.stdout.splitlines() if x.split()[1:2] == ["coordinator"])
    assert line.startswith("OK   coordinator"), out.stdout + out.stderr
    assert f"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={cert}" in line
    assert out.returncode == 0, out.stdout + out.stderr
