"""Shipped SLA and conformance presets (package data), loaded only when asked for by name."""

from __future__ import annotations

from importlib import resources
from typing import Any

from seamfill.core.errors import ConfigError

NAMES = ("strict", "tolerant")


def load_preset(name: str) -> dict[str, Any]:
    """The preset's mapping (``sla:`` and ``conformance:`` sections)."""
    import yaml

    if name not in NAMES:
        raise ConfigError(f"preset {name!r} is not one of {', '.join(NAMES)}")
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"preset {name!r} is not a mapping")
    return data
