"""The chart ships files/alerts as a PrometheusRule and files/dashboards as a ConfigMap the
Grafana sidecar loads, and renders cleanly whether or not those files exist."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.unit.test_helm_support import CHART, find, one, render

MONITORING = ("monitoring-values.yaml",)


def test_prometheus_rule_carries_every_shipped_group() -> None:
    shipped = []
    for path in sorted((CHART / "files" / "alerts").glob("*.y*ml")):
        shipped += yaml.safe_load(path.read_text())["groups"]
    assert shipped, "files/alerts holds no rule groups"
    rule = one(render(MONITORING), "PrometheusRule", "sf-seamfill")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == shipped
    # Alert templates reach Prometheus verbatim, not eaten by helm's own templating.
    annotations = [r.get("annotations", {}) for g in shipped for r in g["rules"]]
    if any("{{" in v for a in annotations for v in a.values()):
        text = json.dumps(rule["spec"]["groups"])
        assert "{{ $labels" in text


def test_dashboards_config_map_has_the_sidecar_label_and_every_dashboard() -> None:
    files = sorted((CHART / "files" / "dashboards").glob("*.json"))
    assert files, "files/dashboards holds no dashboards"
    cm = one(render(MONITORING), "ConfigMap", "sf-seamfill-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "seamfill"}
    assert sorted(cm["data"]) == [p.name for p in files]
    for path in files:
        assert json.loads(cm["data"][path.name]) == json.loads(path.read_text())


def test_monitoring_objects_are_off_by_default() -> None:
    manifests = render()
    assert not find(manifests, "PrometheusRule")
    assert not find(manifests, "ServiceMonitor")
    assert "sf-seamfill-dashboards" not in {m["metadata"]["name"] for m in manifests}


def test_chart_renders_without_alert_or_dashboard_files(tmp_path: Path) -> None:
    chart = tmp_path / "seamfill"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("dashboards", "alerts"))
    manifests = render(
        sets=(
            "monitoring.prometheusRule.enabled=true",
            "monitoring.dashboards.enabled=true",
            "monitoring.serviceMonitor.enabled=true",
        ),
        chart=chart,
    )
    assert not find(manifests, "PrometheusRule")
    assert "sf-seamfill-dashboards" not in {m["metadata"]["name"] for m in manifests}
    assert find(manifests, "ServiceMonitor")
