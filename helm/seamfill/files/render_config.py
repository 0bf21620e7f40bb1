"""Write the coordinator's config file: the ConfigMap's base plus credentials from the environment.

Credentials (the Redis URL, QuestDB's URL and DSN, the role tokens) live in Secrets, never in a
ConfigMap, so they are merged here at pod start into a file on an in-memory volume that only the
coordinator container reads. Usage: python render_config.py BASE.yaml OUT.yaml
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import yaml

ROLES = ("reader", "worker", "admin")


class ConfigError(Exception):
    """A value the coordinator cannot start without is missing or malformed."""


def render(base: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Return `base` with redis_url, storage.default and auth taken from `env`."""
    config = dict(base)
    redis_url = env.get("SEAMFILL_REDIS_URL", "").strip()
    if not redis_url:
        raise ConfigError("SEAMFILL_REDIS_URL is empty: set redis.url or redis.existingSecret")
    config["redis_url"] = redis_url

    storage = dict(config.get("storage") or {})
    default = dict(storage.get("default") or {})
    for key, name in (("http", "SEAMFILL_QUESTDB_URL"), ("dsn", "SEAMFILL_QUESTDB_DSN")):
        value = env.get(name, "").strip()
        if value:
            default[key] = value
    if "http" not in default:
        raise ConfigError(
            "SEAMFILL_QUESTDB_URL is empty: set questdb.httpUrl or questdb.existingSecret"
        )
    storage["default"] = default
    config["storage"] = storage

    auth: dict[str, list[str]] = {}
    for role in ROLES:
        name = f"SEAMFILL_AUTH_{role.upper()}_TOKEN"
        token = env.get(name, "").strip()
        if not token:
            raise ConfigError(
                f"{name} is empty: set auth.tokens.{role} or its key in auth.existingSecret"
            )
        auth[role] = [token]
    config["auth"] = auth
    return config


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: render_config.py BASE.yaml OUT.yaml", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        base = yaml.safe_load(f) or {}
    if not isinstance(base, dict):
        print(f"ConfigError: {argv[1]} must hold a mapping", file=sys.stderr)
        return 1
    try:
        config = render(base, os.environ)
    except ConfigError as e:
        print(f"ConfigError: {e}", file=sys.stderr)
        return 1
    # 0600: the file carries tokens.
    fd = os.open(argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
