"""The Dockerfile builds one image for every entry point. No Docker engine runs here, so its
instructions are parsed and checked, and its install steps are replayed with the same uv
commands into a scratch environment, which must then run `seamfill`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.unit.test_helm_support import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def test_every_stage_is_python_311_slim() -> None:
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    for stage in _stages():
        assert stage[0][1].split()[0] == "${PYTHON_IMAGE}"


def test_dependencies_come_from_the_lock_with_uv() -> None:
    runs = " ".join(a for k, a in instructions() if k == "RUN")
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", args["UV_VERSION"]), "pin uv"
    assert 'pip install "uv==${UV_VERSION}"' in runs
    syncs = [m for k, a in instructions() if k == "RUN" for m in re.findall(r"uv sync ([^&]*)", a)]
    assert len(syncs) == 2, syncs
    for flags in syncs:
        assert "--frozen" in flags and "--no-dev" in flags and "--all-packages" in flags
    assert "--no-install-workspace" in syncs[0]
    assert "--no-editable" in syncs[1], "the runtime stage must not need the source tree"


def test_runtime_stage_runs_as_the_charts_non_root_user() -> None:
    final = _stages()[-1]
    users = [a for k, a in final if k == "USER"]
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets runAsNonRoot verify it"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for component in ("coordinator", "worker"):
        assert values[component]["podSecurityContext"]["runAsUser"] == int(uid)
        assert values[component]["podSecurityContext"]["runAsGroup"] == int(gid)
    assert ("ENTRYPOINT", '["seamfill"]') in final
    copies = [a for k, a in final if k == "COPY"]
    assert copies == ["--from=build /opt/seamfill /opt/seamfill"], "only the venv is carried over"
    exposed = {p for k, a in final if k == "EXPOSE" for p in a.split()}
    assert exposed == {"50051", "9464", "9465"}


def test_copied_paths_exist_and_pass_the_dockerignore() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for keyword, args in instructions():
        if keyword != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path"
            assert any(source == a or source.startswith(a + "/") for a in allowed), (
                f"COPY {source}: excluded by .dockerignore"
            )


def test_install_steps_produce_a_working_seamfill(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        src.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    for package in ("sdk", "coordinator", "worker"):
        shutil.copytree(
            ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    uv = shutil.which("uv") or "uv"
    # The image's second sync alone: the first (dependencies only) is a cache layer of it.
    sync = [uv, "sync", "--quiet", "--frozen", "--no-dev", "--all-packages", "--no-editable"]
    proc = subprocess.run(
        [*sync, "--python", "python3.11"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(src)  # the image's runtime stage has no source tree either
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import seamfill.core, seamfill.sdk, seamfill.cli.main, seamfill.coordinator, "
            "seamfill.worker, seamfill.v1, yaml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [str(venv / "bin" / "seamfill"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for group in ("coordinator", "worker", "admin", "health", "demo"):
        assert group in proc.stdout
