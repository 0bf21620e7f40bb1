"""A registry of materialized artifacts on the filesystem: Parquet rows plus a JSON manifest.

Layout under the registry's root, one directory per (series, range, as-of)::

    <dataset>/<symbol>/<start_us>-<end_us>@<as_of_us>/data.parquet
    <dataset>/<symbol>/<start_us>-<end_us>@<as_of_us>/manifest.json

Dataset and symbol are percent-encoded (symbols are data: any character round-trips and none
can climb out of the root). The manifest is written last, through a temporary file and an atomic
rename, so a directory without one is an unfinished write that a re-run redoes; a directory with
one is done, and checked against the file's sha256 before it is trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from seamfill.core.errors import StorageError
from seamfill.core.types import Series, TimeRange

FORMAT = "seamfill-artifact-v1"
DATA = "data.parquet"
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One materialized (series, range, as-of) and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def series(self) -> Series:
        return Series(self.manifest["dataset"], self.manifest["symbol"])

    @property
    def range(self) -> TimeRange:
        start, end = self.manifest["range"]
        return TimeRange(int(start), int(end))

    @property
    def as_of_us(self) -> int:
        return int(self.manifest["as_of_us"])

    @property
    def interval_us(self) -> int:
        return int(self.manifest["interval_us"])

    def read(self) -> pd.DataFrame:
        """The rows, as written (bar schema, ``ts`` as datetime64[us, UTC])."""
        import pyarrow.parquet as pq

        frame: pd.DataFrame = pq.read_table(self.path / DATA).to_pandas()
        frame["ts"] = frame["ts"].dt.as_unit("us")
        return frame


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ArtifactRegistry:
    """Artifacts under ``root`` (a directory; made on the first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def directory(self, series: Series, rng: TimeRange, as_of_us: int) -> Path:
        name = f"{rng.start_us}-{rng.end_us}@{as_of_us}"
        return self.root / quote(series.dataset, safe="") / quote(series.symbol, safe="") / name

    def artifacts(self, series: Series | None = None) -> Iterator[Artifact]:
        """Every finished artifact (of ``series``, when given)."""
        base = self.root
        if series is not None:
            base = base / quote(series.dataset, safe="") / quote(series.symbol, safe="")
        if not base.is_dir():
            return
        pattern = f"*/{MANIFEST}" if series is not None else f"*/*/*/{MANIFEST}"
        for manifest in sorted(base.glob(pattern)):
            yield Artifact(manifest.parent, self._load(manifest))

    def find(self, series: Series, rng: TimeRange, as_of_us: int | None = None) -> Artifact | None:
        """The newest artifact of ``series`` whose range holds ``rng`` (of that as-of, if given)
        and whose file still matches its manifest."""
        best: Artifact | None = None
        for art in self.artifacts(series):
            if not (art.range.start_us <= rng.start_us and rng.end_us <= art.range.end_us):
                continue
            if as_of_us is not None and art.as_of_us != as_of_us:
                continue
            if best is None or art.as_of_us > best.as_of_us:
                best = art
        if best is not None and not self.intact(best):
            raise StorageError(
                f"artifact {best.path} does not match its manifest (file changed or "
                "truncated): delete the directory and materialize again"
            )
        return best

    def done(self, series: Series, rng: TimeRange, as_of_us: int | None) -> Artifact | None:
        """The intact artifact of exactly ``rng`` (and ``as_of_us``, if given), else ``None``."""
        for art in self.artifacts(series):
            if art.range == rng and as_of_us in (None, art.as_of_us) and self.intact(art):
                return art
        return None

    @staticmethod
    def intact(art: Artifact) -> bool:
        data = art.path / DATA
        return data.is_file() and file_sha256(data) == art.manifest.get("file_sha256")

    def write(
        self, series: Series, rng: TimeRange, as_of_us: int, frame: pd.DataFrame, meta: Any
    ) -> Artifact:
        """Write ``frame`` and its manifest (``meta``: the read's :class:`SeamlessMeta`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from seamfill.sdk.quality.conformance import VERSION

        target = self.directory(series, rng, as_of_us)
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".{DATA}.tmp"
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, tmp)
        os.replace(tmp, target / DATA)
        fp = meta.fingerprint
        manifest = {
            "format": FORMAT,
            "series": str(series),
            "dataset": series.dataset,
            "symbol": series.symbol,
            "range": [rng.start_us, rng.end_us],
            "as_of_us": as_of_us,
            "interval_us": meta.interval_us,
            "rows": len(frame),
            "fingerprint": {"sha256": fp.sha256, "rows": fp.rows} if fp is not None else None,
            "coverage_ratio": meta.coverage_ratio,
            "gaps": [[g.start_us, g.end_us] for g in meta.gaps],
            "conformance": meta.conformance.to_dict() if meta.conformance else None,
            "conformance_version": VERSION,
            "file": DATA,
            "file_sha256": file_sha256(target / DATA),
        }
        tmp_manifest = target / f".{MANIFEST}.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True), "utf-8")
        os.replace(tmp_manifest, target / MANIFEST)
        return Artifact(target, manifest)

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise StorageError(
                f"artifact manifest {path} cannot be read ({e}): delete its directory and "
                "materialize again"
            ) from e
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StorageError(f"{path} is not a {FORMAT} manifest")
        return data
