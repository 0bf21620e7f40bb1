"""What a strategy installs: the built ``seamfill-sdk`` wheel (and the ``seamfill-core`` it
depends on) in a fresh virtualenv, without extras, reads from a real fleet.

The wheel must bring none of the operator's or the servers' libraries; a read against the fleet
(a coordinator and a worker as real processes, the real Redis and QuestDB) must work there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.worker_support import REPO, Fleet

pytestmark = pytest.mark.e2e

MIN = 60_000_000
T0 = 1_704_067_200_000_000
# Libraries of the operator's tools and of the servers: a strategy's environment has none.
NOT_FOR_STRATEGIES = {
    "click",
    "rich",
    "prometheus-client",
    "opentelemetry-sdk",
    "psycopg",
    "psycopg-binary",
    "questdb",
    "redis",
    "hiredis",
}


def _uv() -> str:
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheels (make install puts it on PATH)"
    return uv


@pytest.fixture(scope="module")
def sdk_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the built seamfill-sdk and seamfill-core wheels."""
    root = tmp_path_factory.mktemp("sdk-wheel")
    dist = root / "dist"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    for pkg in ("seamfill-core", "seamfill-sdk"):
        subprocess.run(
            [_uv(), "build", "--package", pkg, "--wheel", "--out-dir", str(dist), "--quiet"],
            cwd=REPO,
            env=env,
            check=True,
        )
    venv = root / "venv"
    subprocess.run([_uv(), "venv", "--python", sys.executable, "--quiet", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheels = sorted(str(w) for w in dist.glob("*.whl"))
    subprocess.run(
        [_uv(), "pip", "install", "--python", str(python), "--quiet", *wheels], env=env, check=True
    )
    return python


def _installed(python: Path) -> set[str]:
    out = subprocess.run(
        [_uv(), "pip", "list", "--python", str(python), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {p["name"].lower().replace("_", "-") for p in json.loads(out.stdout)}


def test_the_sdk_wheel_brings_no_operator_or_server_library(sdk_venv: Path) -> None:
    installed = _installed(sdk_venv)
    assert {"seamfill-sdk", "seamfill-core", "grpcio", "pandas", "pyarrow"} <= installed
    assert installed & NOT_FOR_STRATEGIES == set()
    assert not installed & {"seamfill-cli", "seamfill-coordinator", "seamfill-worker"}


def test_the_check_sees_an_operator_library_in_the_workspace_env() -> None:
    """The same listing over the development environment finds them: the check can fail."""
    assert _installed(Path(sys.executable)) & NOT_FOR_STRATEGIES >= {"click", "rich", "redis"}


@pytest.fixture
def fleet(
    tmp_path: Path, redis_url: str, questdb_url: str, key_prefix: str, unique: str
) -> Iterator[Fleet]:
    f = Fleet(tmp_path, redis_url, questdb_url, key_prefix)
    f.start_coordinator(
        {
            "wheel.bars": {
                "table": f"sdk_wheel_{unique}",
                "source": "scripted",
                "interval": "1m",
                "chunk_bars": 60,
                "settle": "0s",
                "kind": "bars",
            }
        }
    )
    f.start_worker("w1")
    yield f
    f.close()


def test_a_read_against_the_fleet_works_from_the_wheel(
    sdk_venv: Path, fleet: Fleet, questdb_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "strategy.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            from seamfill.sdk import SeamlessProvider, SeamlessSettings

            settings = SeamlessSettings(
                coordinator_url={fleet.address!r}, questdb_url={questdb_url!r},
                dataset="wheel.bars", strategy="auto_backfill",
            )
            with SeamlessProvider(settings) as provider:
                df = provider.fetch({T0}, {T0 + 180 * MIN}, node_id="BTC-USDT", interval=60)
            meta = df.attrs["seamless"]
            print(len(df), meta.complete, df["ts"].iloc[-1].value // 1000)
            loaded = sorted(m for m in ("click", "rich", "redis", "psycopg") if m in sys.modules)
            print(",".join(loaded) or "-")
            """
        )
    )
    out = subprocess.run(
        [str(sdk_venv), str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    rows, complete, last = out.stdout.split("\n")[0].split()
    assert (int(rows), complete, int(last)) == (180, "True", T0 + 179 * MIN)
    assert out.stdout.split("\n")[1] == "-"
