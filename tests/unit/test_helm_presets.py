"""The chart ships the SDK's SLA and conformance presets unchanged, so a strategy pod that
mounts the presets ConfigMap and one that loads them from the package read the same policy."""

from __future__ import annotations

import yaml

from tests.unit.test_helm_support import CHART, ROOT, one, render

SDK_PRESETS = ROOT / "sdk" / "src" / "seamfill" / "sdk" / "presets"
CHART_PRESETS = CHART / "files" / "presets"


def test_chart_presets_are_copies_of_the_sdk_presets() -> None:
    sdk = {p.name: p.read_bytes() for p in SDK_PRESETS.glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in CHART_PRESETS.glob("*.yaml")}
    assert sdk, f"no presets in {SDK_PRESETS}"
    assert sorted(chart) == sorted(sdk), "copy sdk/src/seamfill/sdk/presets/*.yaml to the chart"
    differing = [name for name in sdk if chart[name] != sdk[name]]
    assert not differing, f"chart presets differ from the SDK's: {differing}; copy them again"


def test_presets_config_map_carries_every_preset_and_the_extras() -> None:
    manifests = render(sets=("presets.extra.team\\.yaml.sla.total_deadline_ms=1000",))
    data = one(manifests, "ConfigMap", "sf-seamfill-presets")["data"]
    for path in CHART_PRESETS.glob("*.yaml"):
        assert yaml.safe_load(data[path.name]) == yaml.safe_load(path.read_text())
    assert yaml.safe_load(data["team.yaml"]) == {"sla": {"total_deadline_ms": 1000}}


def test_presets_config_map_can_be_turned_off() -> None:
    names = {m["metadata"]["name"] for m in render(sets=("presets.enabled=false",))}
    assert "sf-seamfill-presets" not in names


def test_every_shipped_preset_loads_with_the_sdk() -> None:
    from seamfill.sdk.quality.conformance import ConformancePipeline
    from seamfill.sdk.settings import SeamlessSettings
    from seamfill.sdk.sla import SLAPolicy

    extra = "presets.extra.live\\.yaml.sla.preset=tolerant"
    data = one(
        render(sets=(extra, "presets.extra.live\\.yaml.sla.total_deadline_ms=800")),
        "ConfigMap",
        "sf-seamfill-presets",
    )["data"]
    assert len(data) >= 3
    for name, text in data.items():
        preset = yaml.safe_load(text)
        assert set(preset) <= {"seamless", "sla", "conformance"}, name
        if "seamless" in preset:
            SeamlessSettings.from_mapping(preset["seamless"], where=f"{name}: seamless")
        if "sla" in preset:
            SLAPolicy.from_mapping(preset["sla"], where=f"{name}: sla")
        if "conformance" in preset:
            ConformancePipeline.from_mapping(preset["conformance"], where=f"{name}: conformance")
    live = SLAPolicy.from_mapping(yaml.safe_load(data["live.yaml"])["sla"])
    assert live == SLAPolicy.from_mapping({"preset": "tolerant", "total_deadline_ms": 800})
