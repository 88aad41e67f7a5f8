"""Features as data: :func:`load_features` for a manifest, a store or a file, and the checks that
let one stage use another's store.

* :func:`load_features` is the public way to get the feature matrix (and the picks and label
  columns) of a selection manifest, a feature store (``coreselect extract -o DIR``) or a
  ``.npy``/``.safetensors`` file.
* :class:`FeatureFile` holds the features a user brings (``select --features-file``, or a matrix:
  ``coreselect.select(data, features=X)``; :func:`user_features`) and reads as a feature store
  does, so :meth:`Executor.select <coreselect.engine.Executor.select>` selects on either.
* :func:`store_mismatch` says in one line why a store does not hold the features of a data x
  model x feature options run (``select --features-dir``); :func:`check_store_data` why it does
  not hold features of a selection's data (``score``/``report --features-dir``).

Examples
--------
>>> import coreselect
>>> f = coreselect.load_features("core.jsonl.manifest.json", label_columns=["category"])  # doctest: +SKIP
>>> f.X.shape, f.picks[:3], f.labels["category"][:2]  # doctest: +SKIP
((240, 1536), array([ 17, 203,  88]), array(['open_qa', 'brainstorm'], dtype=object))
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from coreselect.data import Dataset
    from coreselect.manifest import FeatureRef, SelectionManifest
    from coreselect.store import FeatureStore

log = logging.getLogger(__name__)

#: File types ``--features-file`` reads.
FEATURE_FILE_TYPES = (".npy", ".safetensors")


@dataclass
class Features:
    """What :func:`load_features` returns.

    ``X``: ``(n_pool, d)`` float32 features, normalised as ``normalize`` says; ``picks``: the
    selection's rows in pick order (None for a store or a file); ``labels``: each requested
    label column as an ``(n_pool,)`` object array (JSON text for non-string values);
    ``source``: where the features came from; ``store``: the open store, if any.
    """

    X: np.ndarray
    normalize: str
    source: str
    picks: np.ndarray | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    store: FeatureStore | None = None

    @property
    def selected(self) -> np.ndarray | None:
        """A boolean ``(n_pool,)`` mask of the picks (None without a selection)."""
        if self.picks is None:
            return None
        mask = np.zeros(self.X.shape[0], dtype=bool)
        mask[self.picks] = True
        return mask


def read_features_file(path: str | os.PathLike[str], names: list[str] | None = None, *,
                       header_only: bool = False) -> dict[str, Any]:
    """The feature groups of a ``.npy`` file (one group, ``"file"``) or a ``.safetensors`` file
    (each 2-D tensor a group; ``names``: only these); one-line :class:`ConfigError` otherwise.
    Never unpickles. ``header_only``: each group's ``(shape, dtype)``, from the file's header
    (a ``.npy`` file is memory-mapped, a ``.safetensors`` file's tensors are not read).

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "f.npy"
    >>> np.save(p, np.ones((3, 2), dtype=np.float32))
    >>> {k: v.shape for k, v in read_features_file(p).items()}
    {'file': (3, 2)}
    >>> read_features_file(p, header_only=True)
    {'file': ((3, 2), dtype('float32'))}
    """
    p = Path(path)
    if p.suffix not in FEATURE_FILE_TYPES:
        raise ConfigError(f"{p}: --features-file must be a {' or '.join(FEATURE_FILE_TYPES)} file")
    if not p.is_file():
        raise ConfigError(f"{p}: features file not found")
    try:
        if p.suffix == ".npy":
            groups: dict[str, Any] = {"file": np.load(p, allow_pickle=False, mmap_mode="r")}
            heads = {k: (a.shape, a.dtype) for k, a in groups.items()}
        else:
            from safetensors import safe_open

            from coreselect.tensorfile import NUMPY_DTYPES

            with safe_open(str(p), framework="np") as f:
                keys = [k for k in f.keys() if names is None or k in names]  # noqa: SIM118 -- no __iter__
                slices = {k: f.get_slice(k) for k in keys}
                heads = {k: (tuple(v.get_shape()), np.dtype(NUMPY_DTYPES[d]) if (d := v.get_dtype()) in NUMPY_DTYPES
                             else d) for k, v in slices.items()}  # a dtype numpy lacks stays its name ("BF16")
                numeric = all(not isinstance(d, str) for _, d in heads.values())
                groups = {} if header_only or not numeric else {k: f.get_tensor(k) for k in keys}
    except Exception as err:  # numpy and safetensors raise several types for a bad file
        raise ConfigError(f"{p}: not a readable {p.suffix} array ({type(err).__name__}: {err})") from None
    bad = [k for k, (shape, d) in heads.items()
           if len(shape) != 2 or isinstance(d, str) or not np.issubdtype(d, np.number)]
    if bad or not heads:
        what = f"{bad[0]!r} has shape {heads[bad[0]][0]} and dtype {heads[bad[0]][1]}" if bad else "no arrays"
        raise ConfigError(f"{p}: features must be numeric 2-D arrays (rows x dims); {what}")
    rows = {shape[0] for shape, _ in heads.values()}
    if len(rows) > 1:
        raise ConfigError(f"{p}: its arrays have different row counts ({', '.join(map(str, sorted(rows)))})")
    return heads if header_only else groups


def features_matrix(value: Any) -> np.ndarray:
    """An in-memory feature matrix (a numpy array, a torch tensor on any device, nested lists) as
    a 2-D numeric array; one-line :class:`ConfigError` otherwise.

    >>> features_matrix([[1, 2], [3, 4]]).shape
    (2, 2)
    >>> features_matrix(np.ones(3))
    Traceback (most recent call last):
    ...
    coreselect.errors.ConfigError: features must be a numeric 2-D matrix (one row per record), got shape (3,) and dtype float64
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor (bf16 has no numpy dtype)
        value = value.detach().cpu()
        value = (value.float() if value.is_floating_point() else value).numpy()
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"features must be a numeric 2-D matrix (one row per record), got {type(value).__name__} "
                          f"({err})") from None
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
        raise ConfigError(f"features must be a numeric 2-D matrix (one row per record), got shape {a.shape} and "
                          f"dtype {a.dtype}")
    return a


class FeatureFile:
    """Features a user brings, read as a feature store is (:class:`~coreselect.store.FeatureSource`):
    ``groups``, ``columns`` (none: no per-row stats or scores), ``n_rows``, ``dims``,
    ``location`` and ``load(names)``; so one select step
    (:meth:`Executor.select <coreselect.engine.Executor.select>`) serves both.

    :meth:`open` reads a ``.npy``/``.safetensors`` file's header (:func:`read_features_file`); each
    :meth:`load` reads the groups it names, as a store reads its shards (nothing stays mapped);
    :meth:`of_matrix` takes a matrix held in memory (``coreselect.select(data, features=X)``).
    ``fingerprint`` is the sha256 of the file's bytes (of the matrix's); ``kind`` what the
    selection manifest records of it.

    >>> f = FeatureFile.of_matrix(np.eye(3))
    >>> f.groups, f.columns, f.n_rows, f.dims, f.location
    (['matrix'], [], 3, {'matrix': 3}, '<features>')
    """

    def __init__(self, location: str, kind: dict[str, Any], dims: dict[str, int], n_rows: int, *,
                 fingerprint: str | None = None, arrays: dict[str, np.ndarray] | None = None,
                 keep: np.ndarray | None = None) -> None:
        self.location, self.kind, self.dims, self._n_rows = location, kind, dims, n_rows
        self._fingerprint, self._arrays, self._keep = fingerprint, arrays, keep  # no arrays: the file at location

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FeatureFile:
        """The features file at ``path``, checked (a one-line :class:`ConfigError` otherwise)."""
        p = Path(path)
        heads = read_features_file(p, header_only=True)  # shapes only: the arrays are read when loaded
        dims = {k: int(shape[1]) for k, (shape, _) in heads.items()}
        n_rows = next(iter(heads.values()))[0][0]
        return cls(str(p), {"kind": "file", "path": str(p)}, dims, n_rows)

    @classmethod
    def of_matrix(cls, value: Any) -> FeatureFile:
        """A matrix held in memory (:func:`features_matrix`: a numpy array, a torch tensor, lists)."""
        X = features_matrix(value)
        fingerprint = f"sha256:{hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest()}"
        return cls("<features>", {"kind": "matrix"}, {"matrix": int(X.shape[1])}, X.shape[0], fingerprint=fingerprint,
                   arrays={"matrix": X})

    def for_pool(self, ds: Dataset) -> FeatureFile:
        """These features as rows of ``ds``'s records: one row per record in input order; with
        records skipped (``--on-error skip``), also one row per input record (the skipped
        records' rows are then left out). A one-line :class:`ConfigError` otherwise."""
        if ds.skipped and self._keep is None and self._n_rows == len(ds) + len(ds.skipped):
            keep = np.array([e.source_index for e in ds.examples])
            return FeatureFile(self.location, self.kind, self.dims, self._n_rows, fingerprint=self._fingerprint,
                               arrays=self._arrays, keep=keep)
        check_rows(self.n_rows, len(ds), self.location)
        return self

    @property
    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the file's bytes (of the whole matrix's)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            with open(self.location, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            self._fingerprint = f"sha256:{h.hexdigest()}"
        return self._fingerprint

    @property
    def groups(self) -> list[str]:
        return list(self.dims)

    @property
    def columns(self) -> list[str]:
        return []

    @property
    def n_rows(self) -> int:
        return self._n_rows if self._keep is None else len(self._keep)

    def load(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """The feature groups ``names`` (all when None), in row order; a file holds no other column."""
        names = names or self.groups
        lacking = [k for k in names if k not in self.dims]
        if lacking:
            raise ConfigError(f"{self.location}: a features file holds features only, no {', '.join(lacking)}")
        groups = self._arrays if self._arrays is not None else read_features_file(self.location, names)
        if self._keep is not None:
            return {k: np.asarray(groups[k])[self._keep] for k in names}
        return {k: groups[k] for k in names}

    def ref(self, *, normalize: str, score_normalize: str) -> FeatureRef:
        """What the selection manifest records of these features."""
        from coreselect.manifest import FeatureRef

        return FeatureRef(self.kind, self.location, self.fingerprint, dict(self.dims), normalize=normalize,
                          score_normalize=score_normalize)


def user_features(job: Any, ds: Dataset) -> FeatureFile:
    """The features a select job brings, as rows of ``ds``: ``job.features_matrix`` (the
    library's ``features=`` matrix) or the file ``job.features_file`` (``select --features-file``)."""
    if job.features_matrix is not None:
        return FeatureFile.of_matrix(job.features_matrix).for_pool(ds)
    return FeatureFile.open(job.features_file).for_pool(ds)


def check_rows(n_rows: int, n_pool: int, source: str) -> None:
    """A one-line error unless features have one row per record of the pool.

    >>> check_rows(10, 12, "f.npy")
    Traceback (most recent call last):
    ...
    coreselect.errors.ConfigError: f.npy: 10 feature rows for a pool of 12 records (one row per record, in order)
    """
    if n_rows != n_pool:
        raise ConfigError(f"{source}: {n_rows} feature rows for a pool of {n_pool} records (one row per record, "
                          "in order)")


def store_mismatch(store_manifest: dict[str, Any], want: dict[str, Any]) -> str | None:
    """Why a store does not hold the features ``want`` describes, as a selection says it:
    :meth:`coreselect.store_manifest.mismatch(...).explain() <coreselect.store_manifest.Mismatch.explain>`; None
    when its key matches.

    >>> old = {"key": "a", "data": {"fingerprint": "sha256:1", "path": "a.jsonl"},
    ...        "model": {"name": "m", "fingerprint": "x"}, "config": {"layers": [15]}}
    >>> store_mismatch(old, {**old, "key": "b", "config": {"layers": [8]}})
    'other feature options (layers: stored [15], now [8])'
    """
    from coreselect.store_manifest import mismatch

    m = mismatch(store_manifest, want)
    return None if m is None else m.explain()


def check_store_data(store: FeatureStore, fingerprint: str | None, n_pool: int) -> None:
    """A one-line :class:`StoreError` unless ``store`` holds one row per record of the data
    whose fingerprint is ``fingerprint`` (any model or feature options)."""
    sm = store.manifest
    have = sm.data_fingerprint
    if fingerprint and have and have != fingerprint:
        raise StoreError(f"{store.root}: holds features of other data ({sm.data_path}, "
                         f"{have[:15]}; the selection's is {fingerprint[:15]})")
    if sm.n_rows != n_pool:
        raise StoreError(f"{store.root}: {sm.n_rows} rows for a pool of {n_pool} records")


def labels_of(ds: Dataset, columns: Sequence[str], *, what: str = "label column") -> dict[str, np.ndarray]:
    """Each label column of ``ds`` as an ``(n,)`` object array (JSON text for non-strings); a
    missing column is one error naming the first record without it (``what`` names the option)."""
    out = {}
    for col in columns:
        missing = [e.line for e in ds.examples if col not in e.record]
        if missing:
            raise ConfigError(f"{ds.path}:{missing[0]}: {what} {col!r} missing ({len(missing)} records lack it)")
        out[col] = np.array([v if isinstance(v := e.record[col], str) else json.dumps(v, sort_keys=True)
                             for e in ds.examples], dtype=object)
    return out


def load_selection(m: SelectionManifest, *, features_dir: str | Path | None = None, normalize: str | None = None
                   ) -> tuple[Dataset, np.ndarray | None, FeatureStore | None, str]:
    """The data of a selection, checked against its manifest, and the features to score it on
    (:func:`selection_features`): ``(dataset, X or None, store or None, where X came from)``."""
    from coreselect.data import load_dataset

    ds = load_dataset(m.resolve(m.data.path), on_error="skip" if m.counts.skipped else "raise",
                      columns=m.data.columns)
    if m.data.fingerprint and ds.fingerprint != m.data.fingerprint:
        raise StoreError(f"{m.data.path}: the data changed since the selection (fingerprint differs)")
    if m.rows is None:
        raise ConfigError(f"{m.path or 'manifest'}: the manifest lists no feature-store rows (written by an older "
                          "version)")
    return (ds, *selection_features(m, len(ds), features_dir=features_dir, normalize=normalize))


def selection_features(m: SelectionManifest, n_pool: int, *, features_dir: str | Path | None = None,
                       normalize: str | None = None) -> tuple[np.ndarray | None, FeatureStore | None, str]:
    """The features to score a selection on: the store ``features_dir`` when given (any store of
    the same data; ``normalize`` default ``center-l2``), else the manifest's own store or
    features file (default: normalised as it was scored); ``(None, None, "")`` when it used none."""
    from coreselect.features.transform import feature_matrix
    from coreselect.store import FeatureStore

    if features_dir is not None:
        store = FeatureStore.open(features_dir)
        check_store_data(store, m.data.fingerprint, n_pool)
        return feature_matrix(store, normalize=normalize or "center-l2"), store, store.location
    if m.features is None:
        return None, None, ""
    norm = normalize or m.features.scored_with
    if m.features.config.get("kind") == "matrix":  # select(data, features=X): nothing on disk to read back
        raise ConfigError(f"{m.path or 'manifest'}: the selection used a feature matrix held in memory; save it "
                          "(numpy.save) and select with --features-file, or pass features_dir= (--features-dir) "
                          "a store of the same data")
    if m.features.store.endswith(FEATURE_FILE_TYPES):  # features the user brought (--features-file)
        f = FeatureFile.open(m.resolve(m.features.store))
        check_rows(f.n_rows, n_pool, f.location)
        return feature_matrix(f, normalize=norm), None, f.location
    store = m.open_store()
    return feature_matrix(store, normalize=norm), store, store.location


def load_features(source: str | os.PathLike[str] | SelectionManifest | FeatureStore, *,
                  normalize: str | None = None, label_columns: Sequence[str] = (),
                  features_dir: str | os.PathLike[str] | None = None) -> Features:
    """The feature matrix of a selection manifest, a feature store or a features file.

    Parameters
    ----------
    source : a ``<output>.manifest.json`` (or a read :class:`~coreselect.manifest.SelectionManifest`),
        a feature-store folder (or an open :class:`~coreselect.store.FeatureStore`), or a
        ``.npy``/``.safetensors`` file.
    normalize : ``"center-l2"``, ``"l2"``, ``"none"``; default: a manifest's scoring
        normalisation, ``"center-l2"`` otherwise.
    label_columns : label columns to read from the data (a manifest's data, or the data path a
        store records).
    features_dir : for a manifest, a store to read instead of the one it names (e.g. for a
        ``random`` pick, which used none); it must hold features of the same data.
    """
    from coreselect.features.transform import feature_matrix
    from coreselect.manifest import SelectionManifest
    from coreselect.store import FeatureStore

    m = source if isinstance(source, SelectionManifest) else None
    p = None if isinstance(source, (SelectionManifest, FeatureStore)) else Path(source)
    if p is not None and p.is_file() and p.suffix == ".json":
        m = SelectionManifest.read(p)
    if m is not None:
        ds, X, store, where = load_selection(m, features_dir=features_dir, normalize=normalize)
        if X is None:
            raise StoreError(f"{m.path or 'manifest'}: the selection used no features; pass features_dir= (or "
                             "--features-dir) a store of the same data, e.g. from `coreselect extract`")
        return Features(X, normalize or (m.features.scored_with if m.features and not features_dir else "center-l2"),
                        where, np.asarray(m.rows, dtype=np.int64), labels_of(ds, label_columns), store)
    norm = normalize or "center-l2"
    if p is not None and p.suffix in FEATURE_FILE_TYPES:
        if label_columns:
            raise ConfigError(f"{p}: a features file names no data to read labels from; load them yourself")
        return Features(feature_matrix(FeatureFile.open(p), normalize=norm), norm, str(p))
    store = source if isinstance(source, FeatureStore) else FeatureStore.open(p)  # type: ignore[arg-type]
    labels: dict[str, np.ndarray] = {}
    if label_columns:
        from coreselect.data import load_dataset

        ds = load_dataset(store.manifest.data_path or "?")
        check_store_data(store, ds.fingerprint, len(ds))
        labels = labels_of(ds, label_columns)
    return Features(feature_matrix(store, normalize=norm), norm, store.location, labels=labels, store=store)


__all__ = ["FEATURE_FILE_TYPES", "FeatureFile", "Features", "check_rows", "check_store_data", "features_matrix",
           "labels_of", "load_features", "load_selection", "read_features_file", "selection_features",
           "store_mismatch", "user_features"]
