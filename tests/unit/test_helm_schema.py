"""values.schema.json documents every key and rejects what the chart cannot use, by name."""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.unit.test_helm_support import CHART, KUBE_VERSION, ROOT, helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema with its dotted path, through properties, maps and $defs."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}" if path else name)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _walk(extra, f"{path}.*")
    for name, sub in node.get("$defs", {}).items():
        yield from _walk(sub, f"$defs.{name}")


def test_every_key_has_a_description() -> None:
    missing = [path for path, node in _walk(SCHEMA, "") if not node.get("description")]
    assert not missing, f"schema nodes without a description: {missing}"


def test_every_object_with_known_keys_rejects_unknown_ones() -> None:
    open_ = [
        path
        for path, node in _walk(SCHEMA, "")
        if "properties" in node and node.get("additionalProperties") is not False
    ]
    assert not open_, f"objects that would accept a misspelled key: {open_}"


def test_every_default_value_is_described_by_the_schema() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def keys(node: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[str]:
        if "$ref" in schema:
            schema = {**SCHEMA["$defs"][schema["$ref"].split("/")[-1]], **schema}
        props = schema.get("properties")
        if props is None:
            return
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            if key not in props:
                yield where
            elif isinstance(value, dict):
                yield from keys(value, props[key], where)

    assert list(keys(values, SCHEMA, "")) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--set-string", "coordinator.replicas=two"),
            "at '/coordinator/replicas': got string, want integer",
        ),
        (("--set-string", "worker.replicas=3"), "at '/worker/replicas': got string, want integer"),
        (("--set", "replicaCount=3"), "additional properties 'replicaCount' not allowed"),
        (
            ("--set", "worker.concurency=3"),
            "at '/worker': additional properties 'concurency' not allowed",
        ),
        (
            (
                "--set",
                "config.datasets.x\\.y.table=t",
                "--set",
                "config.datasets.x\\.y.source=s",
                "--set",
                "config.datasets.x\\.y.interval=1m",
                "--set",
                "config.datasets.x\\.y.chunk=5",
            ),
            "additional properties 'chunk' not allowed",
        ),
        (("--set", "worker.autoscaling.mode=vpa"), "at '/worker/autoscaling/mode'"),
        (("--set", "redis.url=localhost:6379"), "at '/redis/url'"),
        (("--set", "config.lease_ttl_ms=10"), "at '/config/lease_ttl_ms'"),
    ],
    ids=[
        "string-replicas",
        "string-worker-replicas",
        "unknown-top-key",
        "misspelled-key",
        "unknown-dataset-key",
        "bad-enum",
        "bad-url",
        "too-small",
    ],
)
def test_schema_violations_fail_lint_naming_the_key(args: tuple[str, ...], message: str) -> None:
    proc = helm("lint", "--strict", "--kube-version", KUBE_VERSION, *args)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert message in output, output


def _readme_commands() -> list[list[str]]:
    """The `helm install|upgrade` commands in the chart's README, as argument lists."""
    text = (CHART / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(("helm install", "helm upgrade")):
                commands.append(shlex.split(line))
    return commands


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pw@redis:6379/0",
        "rediss://redis:6380/0",
        "redis+cluster://:pw@redis-0.redis:6379,redis-1.redis:6379",
        "rediss+sentinel://sentinel-0:26379,sentinel-1:26379/mymaster",
    ],
)
def test_every_redis_url_kind_the_coordinator_takes_passes_lint(url: str) -> None:
    escaped = url.replace(",", "\\,")  # --set splits on commas
    proc = helm("lint", "--strict", "--kube-version", KUBE_VERSION, "--set", f"redis.url={escaped}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_shows_install_upgrade_and_scaling() -> None:
    verbs = [c[1] for c in _readme_commands()]
    assert "install" in verbs and "upgrade" in verbs
    assert any("worker.replicas=8" in " ".join(c) for c in _readme_commands())


@pytest.mark.parametrize("command", _readme_commands(), ids=lambda c: " ".join(c[1:3]))
def test_readme_helm_commands_pass_lint(command: list[str]) -> None:
    args: list[str] = []
    for flag, value in itertools.pairwise(command):
        if flag == "--set":
            args += ["--set", value]
        elif flag == "-f":
            # Every file a README command passes ships with the chart.
            assert (ROOT / value).is_file(), f"README names a missing file: {value}"
            args += ["-f", str(ROOT / value)]
    proc = helm("lint", "--strict", "--kube-version", KUBE_VERSION, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
