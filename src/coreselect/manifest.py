"""The selection manifest: what ``coreselect select`` writes next to a core set, typed.

``<output>.manifest.json`` says what was selected (rows, input positions, lines), from which data
(path, fingerprint), how (method and parameters, budget, features and their store) and how well
(scores). :class:`SelectionManifest` is its one reader and writer: the pipeline writes it,
``coreselect score``, ``report`` and ``compare`` read it. Its JSON keys are those of every
manifest written so far, so old manifests still read.

It records two normalisations: ``features.normalize`` is what the selector saw (``raw`` for a
method that reads raw activations), ``features.score_normalize`` the space its coverage was scored
in; :meth:`SelectionManifest.load_features` returns the features in the latter, so a rescore
reproduces the manifest's scores.

Examples
--------
>>> m = SelectionManifest.read("core.jsonl.manifest.json")  # doctest: +SKIP
>>> m.method.name, m.counts.selected, m.load_features().shape  # doctest: +SKIP
('facility-location', 36, (240, 1536))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coreselect.errors import ConfigError, StoreError
from coreselect.output import atomic_write_bytes

if TYPE_CHECKING:
    import numpy as np

    from coreselect.store import FeatureStore


@dataclass(frozen=True)
class DataRef:
    """The data file a selection was made from."""

    path: str
    fingerprint: str | None = None
    format: str | None = None
    container: str | None = None
    columns: dict[str, str] | None = None  # the columns= mapping it was read with (absent when none)


@dataclass(frozen=True)
class Budget:
    ratio: float | None
    n: int | None
    n_selected: int
    tokens: int | None = None  # --budget-tokens (absent without one)
    picked_tokens: int | None = None  # the selector's tokens of the picks (absent without a feature store)


@dataclass(frozen=True)
class Counts:
    pool: int
    selected: int
    skipped: int = 0
    duplicates: int | None = None  # absent from manifests written before it was counted


@dataclass(frozen=True)
class MethodRef:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    #: what the method reports of its run (a selector's ``info_``: e.g. facility location's kNN
    #: index and its measured recall); absent from older manifests and from methods without it
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureRef:
    """The features a selection used: their config, store and the normalisations applied."""

    config: dict[str, Any]
    store: str
    key: str
    dims: dict[str, int]
    normalize: str  # what the selector saw: center-l2, l2, none, or raw (a raw-activation method)
    score_normalize: str | None = None  # what the coverage was scored in (None: written before it was recorded)
    tokens: int | None = None
    truncated: int | None = None
    precision: str | None = None  # what the selector model ran in (None: written before it was recorded)
    #: Records this run put through the model (0: every row came from the store or the record cache).
    extracted: int | None = None

    @property
    def scored_with(self) -> str:
        """The normalisation of the scored features (older manifests: the selector's, or center-l2 for raw)."""
        if self.score_normalize:
            return self.score_normalize
        return self.normalize if self.normalize in ("center-l2", "l2", "none") else "center-l2"


def _take(cls: type, d: dict[str, Any]) -> Any:
    """``cls(**d)`` with the keys ``cls`` knows (a later version's extra keys are ignored)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class SelectionManifest:
    """One selection, as ``<output>.manifest.json`` records it (see the module docstring)."""

    data: DataRef
    counts: Counts
    method: MethodRef
    rows: list[int] | None  # feature-store rows (= dataset rows) of the picks, in pick order
    indices: list[int] | None  # 0-based positions of the picks in the input file
    lines: list[int] | None = None  # 1-based lines (rows for Parquet) of the picks
    budget: Budget | None = None
    order: str = "selection"
    version: str | None = None
    engine: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    features: FeatureRef | None = None
    skipped: list[str] = field(default_factory=list)
    coverage_curve: list[float] | None = None
    dedup: dict[str, Any] | None = None  # {"threshold": --dedup, "removed": near-duplicates removed}
    scores: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)  # where it was read from

    # -- JSON -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The manifest as written: the keys (and their order) of every earlier version."""
        data = {k: v for k, v in vars(self.data).items() if v is not None or k != "columns"}
        m: dict[str, Any] = {"coreselect_version": self.version, "data": data}
        if self.budget is not None:
            m["budget"] = {k: v for k, v in vars(self.budget).items()
                           if v is not None or k not in ("tokens", "picked_tokens")}
        m["counts"] = {k: v for k, v in vars(self.counts).items() if v is not None}
        if self.dedup is not None:
            m["dedup"] = self.dedup
        m["method"] = {"name": self.method.name, "params": self.method.params}
        if self.method.info:
            m["method"]["info"] = self.method.info
        m["order"] = self.order
        if self.engine is not None:
            m["engine"] = self.engine
        if self.model is not None:
            m["model"] = self.model
        if self.features is not None:
            m["features"] = {k: v for k, v in vars(self.features).items() if v is not None}
        if self.skipped:
            m["skipped"] = self.skipped
        m.update(indices=self.indices, lines=self.lines, rows=self.rows)
        if self.lines is None:
            del m["lines"]
        if self.coverage_curve is not None:
            m["coverage_curve"] = self.coverage_curve
        m["scores"] = self.scores
        m["timings"] = self.timings
        return m

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the manifest atomically (indented JSON); returns the path."""
        p = Path(path)
        atomic_write_bytes(p, (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode())
        return p

    @classmethod
    def from_json(cls, m: Any, where: str = "manifest") -> SelectionManifest:
        """Parse a loaded manifest; a one-line :class:`ConfigError` when it is not one."""
        if not isinstance(m, dict):
            raise ConfigError(f"{where}: not a coreselect manifest (expected a JSON object)")
        missing = [k for k in ("data", "counts", "method") if not isinstance(m.get(k), dict)]
        if missing or not isinstance(m["data"].get("path"), str):
            raise ConfigError(f"{where}: not a coreselect selection manifest "
                              f"(missing {', '.join(missing) or 'data.path'})")
        rows, indices = m.get("rows"), m.get("indices")
        if not isinstance(rows, list) and not isinstance(indices, list):
            raise ConfigError(f"{where}: manifest lists no picks (no rows or indices)")
        try:
            feats = m.get("features")
            budget = m.get("budget")
            return cls(
                data=_take(DataRef, m["data"]),
                counts=_take(Counts, m["counts"]),
                method=MethodRef(m["method"].get("name", "?"), dict(m["method"].get("params") or {}),
                                 dict(m["method"].get("info") or {})),
                rows=rows if isinstance(rows, list) else None, indices=indices if isinstance(indices, list) else None,
                lines=m.get("lines"), budget=_take(Budget, budget) if isinstance(budget, dict) else None,
                order=m.get("order", "selection"), version=m.get("coreselect_version"), engine=m.get("engine"),
                model=m.get("model"), features=_take(FeatureRef, feats) if isinstance(feats, dict) and feats else None,
                skipped=list(m.get("skipped") or []), coverage_curve=m.get("coverage_curve"),
                dedup=m.get("dedup") if isinstance(m.get("dedup"), dict) else None,
                scores=dict(m.get("scores") or {}), timings=dict(m.get("timings") or {}),
            )
        except TypeError as err:  # an unknown or missing key in a section
            raise ConfigError(f"{where}: not a coreselect selection manifest ({err})") from None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SelectionManifest:
        """Read ``<output>.manifest.json``; a one-line :class:`ConfigError` when it is not one.

        Examples
        --------
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x.json"
        >>> _ = p.write_text("[1, 2]")
        >>> try:
        ...     SelectionManifest.read(p)
        ... except ConfigError as err:
        ...     print(str(err).split(": ", 1)[1])
        not a coreselect manifest (expected a JSON object)
        """
        p = Path(path)
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: manifest not found") from None
        except (OSError, ValueError) as err:
            raise ConfigError(f"{p}: unreadable manifest ({err})") from None
        m = cls.from_json(raw, str(p))
        m.path = p
        return m

    # -- features ---------------------------------------------------------------------------------
    def resolve(self, path: str) -> Path:
        """A path named in the manifest: as written (absolute, or relative to the current
        directory), else relative to the manifest's folder."""
        p = Path(path)
        if p.is_absolute() or p.exists() or self.path is None:
            return p
        alt = self.path.parent / p
        return alt if alt.exists() else p

    def open_store(self, *, check_key: bool = True) -> FeatureStore:
        """The feature store the selection used; :class:`StoreError` when it is gone or changed."""
        from coreselect.store import FeatureStore

        if self.features is None:
            raise StoreError(f"{self.path or 'manifest'}: the selection used no features")
        store = FeatureStore.open(self.resolve(self.features.store))
        if check_key and store.manifest.key != self.features.key:
            raise StoreError(f"{self.features.store}: holds other features than the selection used")
        return store

    def load_features(self, store: FeatureStore | None = None) -> np.ndarray:
        """The (n_pool, d) float32 features the selection was scored on (``features.score_normalize``).

        ``store``: the feature store when already open (default: :meth:`open_store`).
        """
        from coreselect.features.transform import feature_matrix

        store = store if store is not None else self.open_store()
        return feature_matrix(store, normalize=self.features.scored_with)


__all__ = ["Budget", "Counts", "DataRef", "FeatureRef", "MethodRef", "SelectionManifest"]
