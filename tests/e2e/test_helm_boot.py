"""The chart's pods as real processes: the init container's script renders the config from the
chart's ConfigMap; the containers' own arguments start a coordinator against a real Redis (the
health check sees it SERVING, auth is on, SIGTERM exits 0) and a worker (its probe path
answers); with TLS, the worker reaches the coordinator over grpcs:// with the chart's CA setting."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import QUESTDB_DSN, QUESTDB_URL
from tests.unit.test_helm_support import (
    CHART,
    ROOT,
    SEAMFILL,
    container,
    fullname,
    one,
    render,
    replace_flags,
    seamfill_process,
)

pytestmark = pytest.mark.integration

TOKENS = {"reader": "r-boot", "worker": "w-boot", "admin": "a-boot"}


def _render_config(where: Path, base: dict[str, object], redis_url: str) -> Path:
    """Run the init container's script on `base` with the credentials a pod would get."""
    (where / "base.yaml").write_text(yaml.safe_dump(base))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
    env = {
        **clean,
        "SEAMFILL_REDIS_URL": redis_url,
        "SEAMFILL_QUESTDB_URL": QUESTDB_URL,
        "SEAMFILL_QUESTDB_DSN": QUESTDB_DSN,
        **{f"SEAMFILL_AUTH_{role.upper()}_TOKEN": token for role, token in TOKENS.items()},
    }
    config = where / "coordinator.yaml"
    script = CHART / "files" / "render_config.py"
    subprocess.run(
        [sys.executable, str(script), str(where / "base.yaml"), str(config)],
        env=env,
        check=True,
        timeout=60,
    )
    return config


@pytest.fixture
def coordinator(tmp_path: Path, redis_url: str, key_prefix: str) -> Iterator[str]:
    """Start the chart's coordinator; yield its address; stop it with SIGTERM."""
    manifests = render(("trial-values.yaml",))
    base = yaml.safe_load(
        one(manifests, "ConfigMap", fullname("coordinator"))["data"]["coordinator.yaml"]
    )
    base["key_prefix"] = key_prefix
    config = _render_config(tmp_path, base, redis_url)
    deployment = one(manifests, "Deployment", fullname("coordinator"))
    args = replace_flags(
        container(deployment, "coordinator")["args"],
        # Loopback and a free port: the test shares the machine with other tests.
        {"--config": str(config), "--host": "127.0.0.1", "--port": "0", "--metrics-port": "0"},
    )
    with seamfill_process(
        args, {"SEAMFILL_REDIS_URL": redis_url}, r"listening on (\S+:\d+)"
    ) as address:
        yield address


def _admin(
    address: str, token: str | None, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
    env |= extra_env or {}
    env["SEAMFILL_COORDINATOR"] = address
    if token is not None:
        env["SEAMFILL_TOKEN"] = token
    return subprocess.run(
        [SEAMFILL, "admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_chart_coordinator_boots_serves_health_and_requires_auth(coordinator: str) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    probe = compose["services"]["coordinator"]["healthcheck"]["test"][3]
    probe = probe.replace("127.0.0.1:50051", coordinator)
    health = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert health.returncode == 0, health.stderr

    listed = _admin(coordinator, TOKENS["admin"], "datasets", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "demo.ohlcv_1m" in listed.stdout

    anonymous = _admin(coordinator, None, "datasets", "--json")
    assert anonymous.returncode == 1
    assert "Unauthenticated" in anonymous.stdout + anonymous.stderr


def test_chart_worker_runs_and_answers_its_probe(coordinator: str) -> None:
    deployment = one(render(("trial-values.yaml",)), "Deployment", fullname("worker"))
    c = container(deployment, "worker")
    args = replace_flags(
        c["args"],
        {"--coordinator": coordinator, "--questdb-url": QUESTDB_URL, "--metrics-port": "0"},
    )
    # A short long-poll, so SIGTERM at the end is not kept waiting for an idle Acquire.
    args += ["--acquire-wait-ms", "500"]
    env = {"SEAMFILL_WORKER_TOKEN": TOKENS["worker"], "SEAMFILL_WORKER_ID": "chart-boot"}
    with seamfill_process(args, env, r"metrics on :(\d+)") as port:
        probe = c["livenessProbe"]["httpGet"]
        url = f"http://127.0.0.1:{port}{probe['path']}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert b"seamfill_worker" in response.read()


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl not found: apt-get install openssl"
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(where: Path) -> None:
    """A CA and a server certificate for localhost, as a kubernetes.io/tls Secret holds them."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
             "-subj", "/CN=seamfill test CA", cwd=where)  # fmt: skip
    _openssl("req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost",
             cwd=where)  # fmt: skip
    (where / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "tls.crt", "-days", "1", "-extfile", "san.ext",
             cwd=where)  # fmt: skip


def test_chart_tls_fleet_connects_over_grpcs(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    _certificates(tmp_path)
    manifests = render(("tls-auth-existing-secret-values.yaml",))
    base = yaml.safe_load(
        one(manifests, "ConfigMap", fullname("coordinator"))["data"]["coordinator.yaml"]
    )
    # The Secret's files, where the pod would mount them.
    assert base["tls"] == {"cert": "/etc/seamfill-tls/tls.crt", "key": "/etc/seamfill-tls/tls.key"}
    base["tls"] = {"cert": str(tmp_path / "tls.crt"), "key": str(tmp_path / "tls.key")}
    base["key_prefix"] = key_prefix
    config = _render_config(tmp_path, base, redis_url)
    coordinator_args = replace_flags(
        container(one(manifests, "Deployment", fullname("coordinator")), "coordinator")["args"],
        {"--config": str(config), "--host": "127.0.0.1", "--port": "0", "--metrics-port": "0"},
    )
    worker = container(one(manifests, "Deployment", fullname("worker")), "worker")
    ca_var = next(e["name"] for e in worker["env"] if e.get("value") == "/etc/seamfill-tls/ca.crt")
    roots = {ca_var: str(tmp_path / "ca.crt")}
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(
            seamfill_process(coordinator_args, {}, r"listening on \S+:(\d+)")
        )
        target = f"grpcs://localhost:{address}"
        chart_target = worker["args"][worker["args"].index("--coordinator") + 1]
        assert chart_target.startswith("grpcs://")
        worker_args = replace_flags(
            worker["args"],
            {"--coordinator": target, "--questdb-url": QUESTDB_URL, "--metrics-port": "0"},
        )
        worker_args += ["--acquire-wait-ms", "500"]
        env = {
            "SEAMFILL_WORKER_TOKEN": TOKENS["worker"],
            "SEAMFILL_WORKER_ID": "chart-tls",
            **roots,
        }
        stack.enter_context(seamfill_process(worker_args, env, r"worker \S+ (started)"))

        deadline = time.monotonic() + 30
        while True:
            listed = _admin(target, TOKENS["admin"], "workers", "--json", extra_env=roots)
            assert listed.returncode == 0, listed.stdout + listed.stderr
            if "chart-tls" in listed.stdout:
                break
            assert time.monotonic() < deadline, (
                f"worker never reached the coordinator: {listed.stdout}"
            )
            time.sleep(0.2)
        plaintext = _admin(f"localhost:{address}", TOKENS["admin"], "datasets", "--json")
        assert plaintext.returncode == 1, "a plaintext client must not get through a TLS port"
