"""Helpers for the chart tests: find helm, render the chart, validate what it renders.

Kept in one module so every chart test renders the same way (same release name, namespace and
Kubernetes version) and a rendering is computed once per test process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "seamfill"
CI_VALUES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
RELEASE = "sf"
NAMESPACE = "markets"
# One version kubernetes-validate bundles; helm renders for the same one.
KUBE_VERSION = "1.33.0"
HELM_INSTALL = "go install helm.sh/helm/v3/cmd/helm@v3.22.0"
# The console script the image's ENTRYPOINT runs, from this environment.
SEAMFILL = str(Path(sys.executable).with_name("seamfill"))

# Custom resources: kubernetes-validate has no schema for them, so their shape is checked by hand.
CRD_KINDS = frozenset({"ServiceMonitor", "PrometheusRule", "ScaledObject"})

Manifest = dict[str, Any]


def helm_binary() -> str:
    """Path of helm: on PATH or where `go install` puts it; fails (never skips) without it."""
    found = shutil.which("helm")
    if found:
        return found
    gobin = Path(os.environ.get("GOBIN", Path.home() / "go" / "bin")) / "helm"
    if gobin.is_file():
        return str(gobin)
    pytest.fail(f"helm not found on PATH or in ~/go/bin: install it with `{HELM_INSTALL}`")


def helm(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    """Run `helm ARGS CHART` and return the finished process (never raises on exit status)."""
    return subprocess.run(
        [helm_binary(), *args, str(chart)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _value_args(values_files: Sequence[str], sets: Sequence[str]) -> list[str]:
    args: list[str] = []
    for name in values_files:
        args += ["-f", str(CHART / "ci" / name)]
    for item in sets:
        args += ["--set", item]
    return args


def lint(
    values_files: Sequence[str] = (), sets: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` with the given ci/ values files and --set items."""
    return helm(
        "lint", "--strict", "--kube-version", KUBE_VERSION, *_value_args(values_files, sets)
    )


def template(
    values_files: Sequence[str] = (), sets: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """`helm template` as a process: for checks the chart makes with `fail`, which lint only
    reports as INFO (lint mode turns `fail` into a note)."""
    return helm(
        "template",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        *_value_args(values_files, sets),
    )


@functools.cache
def _render_cached(chart: str, values_files: tuple[str, ...], sets: tuple[str, ...]) -> str:
    proc = helm(
        "template",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        *_value_args(values_files, sets),
        chart=Path(chart),
    )
    if proc.returncode != 0:
        raise AssertionError(f"helm template failed:\n{proc.stderr}")
    return proc.stdout


def render(
    values_files: Sequence[str] = (), sets: Sequence[str] = (), chart: Path = CHART
) -> list[Manifest]:
    """The rendered objects of the chart, as dicts, in render order."""
    text = _render_cached(str(chart), tuple(values_files), tuple(sets))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """Objects of `kind` (and `name`, if given)."""
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    """The single object of `kind` named `name`; fails listing what was rendered otherwise."""
    found = find(manifests, kind, name)
    rendered = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)
    assert len(found) == 1, f"expected one {kind}/{name}, rendered: {rendered}"
    return found[0]


def container(deployment: Manifest, name: str) -> Manifest:
    """The container `name` of a Deployment or StatefulSet."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    matching = [c for c in containers if c["name"] == name]
    assert matching, f"no container {name} in {deployment['metadata']['name']}"
    return matching[0]


def env_of(c: Manifest) -> dict[str, Manifest]:
    """A container's env entries by name."""
    return {e["name"]: e for e in c.get("env", [])}


def fullname(component: str) -> str:
    """Object name the chart gives a component in the test release."""
    return f"{RELEASE}-seamfill-{component}"


@contextlib.contextmanager
def seamfill_process(args: list[str], env: dict[str, str], ready: str) -> Iterator[str]:
    """Run `seamfill ARGS`; yield the first group of the line matching `ready`; then SIGTERM,
    which must drain and exit 0."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFILL_")}
    proc = subprocess.Popen(
        [SEAMFILL, *args],
        env={**clean, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    found = ""
    try:
        deadline = time.monotonic() + 30
        while not found:
            if proc.poll() is not None and lines.empty():
                pytest.fail(f"`seamfill {args[0]}` exited with {proc.returncode}:\n{''.join(seen)}")
            if time.monotonic() > deadline:
                pytest.fail(f"`seamfill {args[0]}` was not ready within 30 s:\n{''.join(seen)}")
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            match = re.search(ready, line)
            if match:
                found = match.group(1)
        yield found
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "SIGTERM must drain and exit 0"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(timeout=10)  # EOF after exit: the pump ends before its pipe is closed
        stdout.close()


def replace_flags(args: list[str], replace: dict[str, str]) -> list[str]:
    """`args` with the value after each flag in `replace` swapped for the given one."""
    out = list(args)
    for flag, value in replace.items():
        out[out.index(flag) + 1] = value
    return out
