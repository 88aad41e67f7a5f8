"""The feature store: sharded float16 safetensors files plus a JSON manifest.

Layout of a store directory::

    manifest.json            what was extracted, from which data and model; "complete" at the end
    shard-00000.safetensors  rows [0, shard_rows): one tensor per feature group, per-row stats
                             and, with ``--scores``, per-row scores
    shard-00001.safetensors  ...

Shards cover fixed row ranges of the input, so any executor (this process, a Ray actor pool)
can write any shard; each is written to a temporary file and renamed, so a shard file that
exists is complete. A rerun skips the shards already there (resume after a crash or Ctrl-C).
Reads go through ``safetensors`` (memory-mapped, never pickle).

The manifest is a :class:`~coreselect.store_manifest.StoreManifest`, the one reader and writer
of ``manifest.json``. Shard file names come from the plan (``n_rows`` and ``shard_rows``,
validated as positive integers), never from paths stored in the manifest, so a tampered manifest
cannot make the store read or write outside its directory. Temporary files left by a killed writer
(``.shard-00003.safetensors.*.tmp``) never match a shard name and are removed by
:meth:`FeatureStore.finalize`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from coreselect.errors import StoreError
from coreselect.output import atomic_write_bytes
from coreselect.store_manifest import MANIFEST, STORE_FORMAT, Mismatch, StoreManifest, mismatch, peek

log = logging.getLogger(__name__)

_SHARD_RE = re.compile(r"^shard-(\d{5})\.safetensors$")
#: Temporary files of :func:`~coreselect.output.atomic_write_bytes`: ``.<name>.<random>.tmp``.
_TMP_RE = re.compile(r"^\..+\.tmp$")
#: Per-row statistics stored next to the features (int32).
ROW_STATS = ("n_tokens", "prompt_tokens", "response_tokens", "truncated")
#: Per-row scores stored next to the features when asked for (float32; NaN where undefined),
#: written by :mod:`coreselect.features.scores`.
ROW_SCORES = ("loss_cond", "loss_alone", "ifd")
#: Every per-row column: neither kind is a feature group.
ROW_COLUMNS = ROW_STATS + ROW_SCORES


class FeatureSource(Protocol):
    """What selection reads features from: a :class:`FeatureStore`, or features a user brings
    (:class:`~coreselect.featureset.FeatureFile`: a ``.npy``/``.safetensors`` file or a matrix),
    which reads the same way, so :meth:`Executor.select <coreselect.engine.Executor.select>` is
    one select step for both.
    """

    @property
    def groups(self) -> list[str]:
        """The feature groups (each ``(n_rows, dims[group])``)."""

    @property
    def columns(self) -> list[str]:
        """The per-row columns held (stats, scores); a features file holds none."""

    @property
    def n_rows(self) -> int: ...

    @property
    def dims(self) -> dict[str, int]: ...

    @property
    def location(self) -> str:
        """Where the features are, for messages and manifests (a folder, a file, ``<features>``)."""

    def load(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Feature groups and per-row columns by name, for all rows in row order (all: None)."""


@dataclass(frozen=True)
class ShardPlan:
    shard: int
    start: int
    end: int

    @property
    def filename(self) -> str:
        return f"shard-{self.shard:05d}.safetensors"


def plan_shards(n_rows: int, shard_rows: int) -> list[ShardPlan]:
    """Split ``n_rows`` into fixed, contiguous shards of ``shard_rows`` rows."""
    return [ShardPlan(i, s, min(s + shard_rows, n_rows)) for i, s in enumerate(range(0, n_rows, shard_rows))]


class FeatureStore:
    """A directory of feature shards. Create with :meth:`create` or open with :meth:`open`.

    ``manifest`` is its :class:`~coreselect.store_manifest.StoreManifest` (a mapping of the
    JSON, such as ``json.loads`` of a ``manifest.json``, is read as one).
    """

    def __init__(self, root: str | os.PathLike[str], manifest: StoreManifest | Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = (manifest if isinstance(manifest, StoreManifest)
                         else StoreManifest.from_json(manifest, str(self.root / MANIFEST)))
        #: Records whose features the last :meth:`Executor.extract <coreselect.executor.Executor.extract>`
        #: computed (0: all came from this store or the record cache); None when not extracted here.
        self.extracted: int | None = None

    # -- creation and resume ---------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike[str], manifest: StoreManifest | Mapping[str, Any]) -> FeatureStore:
        """Open ``root`` for writing; resume if it holds a store of the same key.

        ``manifest`` must hold ``key`` (what identifies the content), ``n_rows`` and
        ``shard_rows``. A directory with a different key is refused, never overwritten.
        """
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root}: exists and is not a directory")
        path = root / MANIFEST
        if path.exists():
            old = StoreManifest.read(root)
            if old.key != manifest["key"]:
                raise StoreError(f"{root}: holds features of {mismatch(old, manifest)}, not of this "
                                 "run; use another directory or delete it")
            if old.n_rows != manifest["n_rows"]:
                raise StoreError(f"{path}: n_rows is {old.n_rows} but the data has "
                                 f"{manifest['n_rows']} rows; delete the directory")
            if old.shard_rows != manifest["shard_rows"]:
                log.info("%s: resuming with its own %d rows per shard", root, old.shard_rows)
            store = cls(root, old)
            if old.complete and store.pending():
                log.warning("%s: %d shards are missing; extracting them again", root, len(store.pending()))
                store.manifest = old.updated(complete=False)
            done = len(store.finished_shards())
            if done:
                log.info("%s: resuming, %d of %d shards already done", root, done, len(store.plan()))
            return store
        if root.exists() and any(not _TMP_RE.match(p.name) for p in root.iterdir()):
            raise StoreError(f"{root}: exists and is not a feature store; use an empty directory")
        root.mkdir(parents=True, exist_ok=True)
        m = StoreManifest.from_json({"format": STORE_FORMAT, "complete": False, **manifest}, str(path))  # checked
        m.write(root)
        return cls(root, m)

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, require_complete: bool = True) -> FeatureStore:
        root = Path(root)
        path = root / MANIFEST
        if not path.is_file():
            raise StoreError(f"{root}: not a feature store (no manifest.json)")
        m = StoreManifest.read(root)
        if m.format != STORE_FORMAT:
            raise StoreError(f"{path}: unknown store format {m.format!r}")
        store = cls(root, m)
        n_shards = m.n_shards  # counted before a (maybe huge) plan is built
        missing = n_shards - len({i for i in store.finished_shards() if i < n_shards})
        if m.complete and missing:
            raise StoreError(f"{root}: {missing} of {n_shards} shards are missing; rerun extract to recreate them")
        if require_complete and not m.complete:
            raise StoreError(f"{root}: extraction not finished ({missing} shards missing); rerun extract to resume")
        return store

    def plan(self) -> list[ShardPlan]:
        return plan_shards(self.manifest.n_rows, self.manifest.shard_rows)

    def finished_shards(self) -> set[int]:
        """Shards whose file exists (temporary files of unfinished writes never count)."""
        return {int(m.group(1)) for p in self.root.iterdir() if (m := _SHARD_RE.match(p.name)) and p.is_file()}

    def pending(self) -> list[ShardPlan]:
        done = self.finished_shards()
        return [s for s in self.plan() if s.shard not in done]

    def write_shard(self, plan: ShardPlan, arrays: dict[str, np.ndarray]) -> None:
        """Write one shard atomically (features as float16, stats as int32, scores as float32)."""
        from safetensors.numpy import save

        n = plan.end - plan.start
        for name, a in arrays.items():
            if a.shape[0] != n:
                raise StoreError(f"shard {plan.shard}: {name} has {a.shape[0]} rows, expected {n}")
        tensors = to_store_dtypes(arrays)
        atomic_write_bytes(self.root / plan.filename, save(tensors, metadata={"start": str(plan.start)}))

    def finalize(self, **extra: Any) -> None:
        """Mark the store complete once every shard exists; record dims (of the feature groups),
        the score columns (``scores``, when there are any) and statistics."""
        missing = self.pending()
        if missing:
            raise StoreError(f"{self.root}: {len(missing)} shards missing, cannot finalise")
        from safetensors import safe_open

        with safe_open(str(self.root / self.plan()[0].filename), framework="np") as f:
            names = list(f.keys())
            dims = {k: int(f.get_slice(k).get_shape()[1]) for k in names if k not in ROW_COLUMNS}
        scores = tuple(k for k in ROW_SCORES if k in names)
        self.manifest = self.manifest.updated(complete=True, dims=dims, **({"scores": scores} if scores else {}),
                                              **extra)
        self.manifest.write(self.root)
        for p in self.root.iterdir():  # left by writers killed mid-write; never read
            if _TMP_RE.match(p.name) and p.is_file():
                log.debug("removing leftover temporary file %s", p)
                p.unlink(missing_ok=True)

    # -- reading ---------------------------------------------------------------------------
    @property
    def groups(self) -> list[str]:
        return self.manifest.groups

    @property
    def columns(self) -> list[str]:
        """The per-row columns: the stats, then the scores the store holds (``--scores``)."""
        return list(ROW_STATS) + [k for k in self.manifest.scores or () if k in ROW_SCORES]

    @property
    def n_rows(self) -> int:
        return self.manifest.n_rows

    @property
    def dims(self) -> dict[str, int]:
        """Each feature group's width (empty until the store is complete)."""
        return dict(self.manifest.dims or {})

    @property
    def location(self) -> str:
        return str(self.root)

    def load(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Read feature groups (float16), row stats (int32) and scores (float32) for all rows, in
        row order; all of them when ``names`` is None. A column the store lacks is a one-line
        :class:`StoreError`.
        """
        names = names or self.groups + self.columns
        lacking = [k for k in names if k in ROW_SCORES and k not in self.columns]
        if lacking:
            raise StoreError(f"{self.root}: holds no {', '.join(lacking)} scores; extract with --scores "
                             "(a method that needs them turns them on)")
        parts = [read_shard(self.root, sp, names) for sp in self.plan()]
        return {k: np.concatenate([p[k] for p in parts]) for k in names}


def to_store_dtypes(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as stored: features float16 (clipped to its range), row stats int32, scores
    float32; contiguous. The store's shards and the record cache (:mod:`coreselect.recordcache`)
    both hold exactly this, so a row read from either is the same bytes.

    >>> {k: v.dtype.name for k, v in to_store_dtypes({"mlp.3": np.ones((2, 4)), "n_tokens": np.ones(2)}).items()}
    {'mlp.3': 'float16', 'n_tokens': 'int32'}
    """
    tensors = {}
    for name, a in arrays.items():
        if name in ROW_STATS:
            tensors[name] = np.ascontiguousarray(a, dtype=np.int32)
        elif name in ROW_SCORES:
            tensors[name] = np.ascontiguousarray(a, dtype=np.float32)
        else:
            f = np.clip(a, -65000.0, 65000.0)  # float16 range: never store inf
            tensors[name] = np.ascontiguousarray(f, dtype=np.float16)
    return tensors


def read_shard(root: Path, plan: ShardPlan, names: list[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of one shard, checked against its plan (start row, row count).

    The one reader of shard files: :meth:`FeatureStore.load` and the Ray selection actors call
    it. A missing, corrupted or misplaced shard is a one-line :class:`StoreError`.

    Examples
    --------
    >>> import tempfile
    >>> st = FeatureStore.create(tempfile.mkdtemp(), {"key": "k", "n_rows": 3, "shard_rows": 2})
    >>> st.write_shard(st.plan()[1], {"mlp.0": np.ones((1, 4))})
    >>> read_shard(st.root, st.plan()[1], ["mlp.0"])["mlp.0"].shape
    (1, 4)
    """
    from safetensors import safe_open

    path = Path(root) / plan.filename
    n = plan.end - plan.start
    try:
        with safe_open(str(path), framework="np") as f:
            start = (f.metadata() or {}).get("start")
            if start != str(plan.start):
                raise StoreError(f"{path}: shard starts at row {start}, expected {plan.start}; "
                                 "delete it and rerun extract")
            out = {k: f.get_tensor(k) for k in names}
    except StoreError:
        raise
    except FileNotFoundError:
        raise StoreError(f"{path}: shard missing; rerun extract to resume") from None
    except Exception as err:  # OSError, KeyError, or safetensors' own error on corruption
        raise StoreError(f"{path}: corrupted shard ({type(err).__name__}: {err}); "
                         "delete it and rerun extract to recreate it") from None
    for k, a in out.items():
        if a.shape[0] != n:
            raise StoreError(f"{path}: {k} has {a.shape[0]} rows, expected {n}; delete it and rerun extract")
    return out


__all__ = ["ROW_COLUMNS", "ROW_SCORES", "ROW_STATS", "STORE_FORMAT", "FeatureSource", "FeatureStore", "Mismatch",
           "ShardPlan", "StoreManifest", "mismatch", "peek", "plan_shards", "read_shard", "to_store_dtypes"]
