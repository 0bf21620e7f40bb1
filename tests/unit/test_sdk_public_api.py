"""The public API: a sorted ``__all__`` that resolves, is complete, and imports lazily."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import seamfill.sdk as sdk

# Modules whose public classes make up the user-facing API; each must be exported.
API_MODULES = (
    "provider",
    "settings",
    "sla",
    "conformance",
    "result",
    "compat",
    "live",
    "fingerprint",
)


def test_all_is_sorted_and_matches_the_export_table() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    assert set(sdk.__all__) == set(sdk._EXPORTS)


def test_every_name_resolves() -> None:
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None, name


def test_every_public_class_of_the_api_modules_is_exported() -> None:
    missing = []
    for mod_name in API_MODULES:
        mod = importlib.import_module(f"seamfill.sdk.{mod_name}")
        for name, obj in vars(mod).items():
            if name.startswith("_") or not inspect.isclass(obj):
                continue
            if obj.__module__ == mod.__name__ and name not in sdk.__all__:
                missing.append(f"{mod_name}.{name}")
    allowed = {"compat.LegacyFetcherAdapter", "settings.CoordinatorAddress", "sla.Budget"}
    assert sorted(set(missing) - allowed) == []


def test_every_error_class_is_exported_or_deliberately_internal() -> None:
    from seamfill.core import errors

    user_facing = {
        "SeamfillError",
        "InvalidArgument",
        "InvalidRange",
        "InvalidSeries",
        "ConfigError",
        "CoordinatorUnavailable",
        "StorageError",
        "FetchError",
        "MissingData",
        "SeamlessSLAExceeded",
        "ConformanceError",
    }
    for name in user_facing:
        assert getattr(errors, name) is getattr(sdk, name)


def test_importing_errors_does_not_load_pandas_or_grpc() -> None:
    code = (
        "import sys, seamfill.core.errors, seamfill.core.types; "
        "print(any(m in sys.modules for m in ('pandas', 'grpc')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
