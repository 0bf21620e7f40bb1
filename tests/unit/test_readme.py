"""The README's examples work as written: its config declares the dataset its commands use."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from seamfill.coordinator.config import CoordinatorConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_declares_the_dataset_its_commands_use() -> None:
    text = README.read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "datasets:" in b]
    cfg = CoordinatorConfig.from_mapping(yaml.safe_load(block), env={})
    used = set(re.findall(r"seamfill admin \w+ ([\w.]+)/", text))
    used |= set(re.findall(r'node_id="([\w.]+)/', text))
    assert used, "the README runs no admin command on a series"
    assert used <= set(cfg.datasets), (used, sorted(cfg.datasets))
    assert all(ds.source == "synthetic" for ds in cfg.datasets.values())


def test_readme_shows_the_console_screenshot() -> None:
    text = README.read_text()
    (path,) = re.findall(r"!\[[^\]]*console[^\]]*\]\(([^)]+\.png)\)", text)
    assert (README.parent / path).is_file()
