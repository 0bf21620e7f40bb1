"""Shipped presets (package data) and a user's presets file, loaded only when asked for by name.

A preset is a mapping with any of ``sla:``, ``conformance:`` and ``seamless:`` (provider
settings, e.g. the fetcher plugin and the storage); ``strict`` and ``tolerant`` hold only the
first two, an assembly such as ``ccxt.questdb.ohlcv`` all three. A user's presets file is a YAML
mapping of preset names to such mappings, named by the caller or by ``SEAMFILL_PRESETS``; its
names are looked up before the shipped ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from seamfill.core.errors import ConfigError

NAMES = ("strict", "tolerant", "ccxt.questdb.ohlcv")
SECTIONS = ("seamless", "sla", "conformance")


def user_presets(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The user's presets file (``path``, else ``SEAMFILL_PRESETS``); ``{}`` when neither."""
    import yaml

    where = (
        path if path is not None else (os.environ if env is None else env).get("SEAMFILL_PRESETS")
    )
    if not where:
        return {}
    try:
        data = yaml.safe_load(Path(where).read_text("utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"presets file {where} cannot be read: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"presets file {where} is not valid YAML: {e}") from e
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(
            f"presets file {where} must map preset names to mappings with "
            f"{', '.join(SECTIONS)} sections"
        )
    return data


def load_preset(name: str, presets_file: str | Path | None = None) -> dict[str, Any]:
    """The preset's mapping (``seamless:``, ``sla:`` and ``conformance:`` sections)."""
    import yaml

    user = user_presets(presets_file)
    if name in user:
        data = user[name]
    elif name in NAMES:
        text = resources.files(__name__).joinpath(f"{name}.yaml").read_text("utf-8")
        data = yaml.safe_load(text)
    else:
        have = ", ".join([*NAMES, *sorted(user)])
        raise ConfigError(
            f"preset {name!r} is not one of {have}: fix the name, or add it to a presets file "
            "(SEAMFILL_PRESETS)"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"preset {name!r} is not a mapping")
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(f"preset {name!r} has a section {key!r}: use {', '.join(SECTIONS)}")
    return data
