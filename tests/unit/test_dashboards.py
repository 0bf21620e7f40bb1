"""The chart's dashboards and alert rules reference only metrics the code really exports.

Exported metrics are read from prometheus_client's registry after importing the sdk, coordinator
and worker metrics modules; the PromQL of every dashboard panel, template variable and alert rule
is tokenised and each metric name (and each label it filters or groups by) is checked against it.
The rules must also pass ``promtool check rules`` and their unit tests (``promtool test rules``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import seamfill.coordinator.metrics
import seamfill.sdk.metrics
import seamfill.worker.metrics

FILES = Path(__file__).resolve().parents[2] / "helm" / "seamfill" / "files"
DASHBOARDS = sorted((FILES / "dashboards").glob("*.json"))
RULE_FILES = sorted((FILES / "alerts").glob("*.yaml"))
RULE_TESTS = sorted((FILES / "alerts" / "tests").glob("*.yaml"))
MODULES = (seamfill.sdk.metrics, seamfill.coordinator.metrics, seamfill.worker.metrics)

# Series Prometheus itself makes for every scrape target, and labels it adds to every series.
SCRAPE_SERIES = {"up": set[str]()}
TARGET_LABELS = {"job", "instance"}
FUNCTIONS_AND_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "le",
}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
}


def exported_series() -> dict[str, set[str]]:
    """Every series name the code's collectors expose, with the label names each one carries."""
    out: dict[str, set[str]] = dict(SCRAPE_SERIES)
    ours = {id(v) for m in MODULES for v in vars(m).values() if hasattr(v, "_labelnames")}
    for collector in list(REGISTRY._collector_to_names):
        if id(collector) not in ours:
            continue
        labels = set(collector._labelnames)  # type: ignore[attr-defined]
        for family in collector.describe():
            for suffix in _SUFFIXES[family.type]:
                extra = {"le"} if suffix == "_bucket" else set()
                out[family.name + suffix] = labels | extra
    return out


def test_registry_walk_sees_every_module() -> None:
    names = exported_series()
    for must in (
        "seamless_sla_deadline_seconds_bucket",
        "backfill_completion_ratio",
        "seamfill_worker_rows_written_total",
        "seamless_backfill_wait_ms_count",
    ):
        assert must in names


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_IDENT = re.compile(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def promql_references(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression uses. Functions and keywords are dropped."""
    text = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery durations
    text = text.replace("$__rate_interval", "").replace("$dataset", "")
    labels: set[str] = set()
    for m in _SELECTOR.finditer(_STRING.sub('""', text)):
        labels.update(_MATCHER_LABEL.findall(m.group(2)))
    text = _SELECTOR.sub(lambda m: (m.group(1) or "") + " ", _STRING.sub('""', text))
    for m in _GROUPING.finditer(text):
        labels.update(x.strip() for x in m.group(2).split(",") if x.strip())
    text = _GROUPING.sub(" ", text)
    metrics = set()
    for m in _IDENT.finditer(text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in FUNCTIONS_AND_KEYWORDS or re.fullmatch(r"\d\w*", name):
            continue
        metrics.add(name)
    return metrics, labels


def test_promql_references_parses_the_shapes_we_use() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, stage) (rate(seamless_sla_deadline_seconds_bucket"
        '{stage="total", dataset=~"a.b"}[5m]))) > 30 unless on(dataset) up == 0'
    )
    assert promql_references(expr) == (
        {"seamless_sla_deadline_seconds_bucket", "up"},
        {"le", "stage", "dataset"},
    )
    assert promql_references("label_values(seamfill_queue_depth, dataset)")[0] == {
        "seamfill_queue_depth",
        "dataset",
    }


def dashboard_exprs(path: Path) -> Iterator[str]:
    board = json.loads(path.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            # label_values(metric, label): the metric must exist and carry the label.
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", var["definition"])
            assert m, f"{path.name}: variable {var['name']} uses an unchecked query"
            yield f'{m.group(1)}{{{m.group(2)}!=""}}'


def rule_exprs(path: Path) -> Iterator[str]:
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def _check(expr: str, where: str, exported: dict[str, set[str]]) -> None:
    metrics, labels = promql_references(expr)
    assert metrics, f"{where}: no metric found in {expr!r}"
    unknown = metrics - exported.keys()
    assert not unknown, f"{where}: {sorted(unknown)} not exported by the code (in {expr!r})"
    known_labels = set().union(*(exported[m] for m in metrics)) | TARGET_LABELS
    assert labels <= known_labels, f"{where}: labels {sorted(labels - known_labels)} unknown"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_metrics_are_exported(path: Path) -> None:
    exported = exported_series()
    exprs = list(dashboard_exprs(path))
    assert len(exprs) >= 5
    for expr in exprs:
        _check(expr, path.name, exported)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"].startswith("seamfill-") and board["title"].startswith("seamfill / ")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in board["panels"]:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]


def test_expected_dashboards_and_alerts_exist() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"fleet", "dataset", "sla"}
    rules = [
        r
        for path in RULE_FILES
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    ]
    alerts = {r["alert"] for r in rules if "alert" in r}
    recorded = {r["record"] for r in rules if "record" in r}
    # Recording rules ship beside the alerts: the aggregates the boards and `top` ask for.
    assert recorded >= {
        "dataset:seamfill_rows_completed:rate5m",
        "dataset:seamfill_queue_time_to_empty:seconds",
        "method:seamfill_rpc_latency_seconds:p99_5m",
    }
    assert alerts >= {
        "SeamfillDeadLettersGrowing",
        "SeamfillLeaseExpiries",
        "SeamfillBackfillStalled",
        "SeamfillSLABreaches",
        "SeamfillCoordinatorDown",
    }


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_metrics_are_exported(path: Path) -> None:
    exported = exported_series()
    for expr in rule_exprs(path):
        _check(expr, path.name, exported)


def test_metric_check_rejects_an_unknown_name() -> None:
    with pytest.raises(AssertionError, match="not exported"):
        _check("rate(seamfill_made_up_total[5m])", "x", exported_series())
    with pytest.raises(AssertionError, match="labels"):
        _check('seamfill_queue_depth{symbol="BTC"}', "x", exported_series())


def _promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("promtool is missing: apt-get install prometheus")
    pytest.skip("promtool is missing: apt-get install prometheus")


def test_rules_pass_promtool_check() -> None:
    out = subprocess.run(
        [_promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_pass_promtool_unit_tests() -> None:
    assert RULE_TESTS
    out = subprocess.run(
        [_promtool(), "test", "rules", *(p.name for p in RULE_TESTS)],
        cwd=FILES / "alerts" / "tests",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
