"""``make bench``: run every figure in one process and write them as JSON.

Each module in tests/bench exposes ``run() -> dict``. Figures are ratios against floors
(tests/bench/floors.py) measured in the same run (these machines are shared and noisy), never
absolute assertions.
Usage: ``python -m tests.bench [NAME ...] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import tests.bench as pkg

ORDER = ["floors", "baseline", "coordinator", "pipeline", "sdk_read"]


def _modules() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--out", default="bench-results/bench.json")
    args = parser.parse_args(argv)
    names = args.names or _modules()
    results: dict[str, Any] = {
        "host": platform.node(),
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": {},
    }
    failed = False
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            figures = importlib.import_module(f"tests.bench.{name}").run()
        except Exception as e:  # a failed figure is reported, the others still run
            traceback.print_exc()
            figures = {"error": f"{type(e).__name__}: {e}"}
            failed = True
        figures["elapsed_s"] = round(time.perf_counter() - t0, 2)
        results["figures"][name] = figures
        print(json.dumps({name: figures}, indent=2), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: wrote {out}", file=sys.stderr)
    from tests.bench import floors

    print(floors.table(results), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
