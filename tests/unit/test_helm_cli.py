"""Every flag the chart and compose.yaml pass to `seamfill` is one its commands accept, and the
environment variables they set are the ones those commands read."""

from __future__ import annotations

import click
import pytest
import yaml

from seamfill.coordinator.cli import coordinator
from seamfill.worker.cli import worker
from tests.unit.test_helm_support import ROOT, container, env_of, fullname, one, render

COMMANDS: dict[tuple[str, str], click.Command] = {
    ("coordinator", "serve"): coordinator.commands["serve"],
    ("worker", "run"): worker.commands["run"],
}


def _options(command: click.Command) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}


def _envvars(command: click.Command) -> set[str]:
    out: set[str] = set()
    for p in command.params:
        env = getattr(p, "envvar", None)
        out |= {env} if isinstance(env, str) else set(env or ())
    return out


def _check(args: list[str]) -> None:
    command = COMMANDS[(args[0], args[1])]
    flags = [a for a in args[2:] if a.startswith("--")]
    unknown = set(flags) - _options(command)
    assert not unknown, f"`seamfill {args[0]} {args[1]}` has no option(s) {sorted(unknown)}"


@pytest.mark.parametrize("values", [(), ("trial-values.yaml",), ("monitoring-values.yaml",)])
def test_chart_passes_only_flags_the_commands_accept(values: tuple[str, ...]) -> None:
    manifests = render(values)
    _check(container(one(manifests, "Deployment", fullname("coordinator")), "coordinator")["args"])
    _check(container(one(manifests, "Deployment", fullname("worker")), "worker")["args"])


def test_chart_sets_the_environment_the_worker_reads() -> None:
    worker_env = env_of(container(one(render(), "Deployment", fullname("worker")), "worker"))
    read = _envvars(COMMANDS[("worker", "run")])
    for name in ("SEAMFILL_WORKER_TOKEN", "SEAMFILL_WORKER_ID"):
        assert name in worker_env and name in read, name
    sourced = render(sets=("worker.sources={synthetic}",))
    assert "SEAMFILL_WORKER_SOURCES" in read
    assert "SEAMFILL_WORKER_SOURCES" in env_of(
        container(one(sourced, "Deployment", fullname("worker")), "worker")
    )


def test_compose_passes_only_flags_the_commands_accept() -> None:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    _check(services["coordinator"]["command"])
    for name in ("worker-1", "worker-2"):
        _check(services[name]["command"])
        read = _envvars(COMMANDS[("worker", "run")])
        assert {"SEAMFILL_WORKER_TOKEN", "SEAMFILL_WORKER_ID"} <= set(services[name]["environment"])
        assert {"SEAMFILL_WORKER_TOKEN", "SEAMFILL_WORKER_ID"} <= read
