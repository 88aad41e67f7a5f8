"""The record cache: each record's features, keyed by its content, reused by every extraction.

A feature store (:mod:`coreselect.store`) holds the rows of one input file in its order; this
cache holds rows by *what the model reads*, so the same records in another container (CSV,
Parquet, a ``save_to_disk`` folder, a DataFrame), in another order, as a subset or as part of a
grown pool reuse their features, and only records never seen are run through the model.

Layout (under ``$CORESELECT_RECORD_CACHE``, default ``<cache dir>/records``)::

    <options key[:16]>/                one folder per model x feature options x precision
        options.json                   what its rows are features of (written once)
        chunk-<time>-<pid>-<rand>.safetensors   "__hash__" (n, 32) uint8 + the store's arrays

* A record's key is the sha256 of its conversation, the normalised ``(role, content)`` turns
  (:func:`record_hashes`): the model reads their rendering, a function of the turns, the
  tokenizer (in the model hash) and the options (``max_length``, ``drop_default_system``, in the
  folder's key). The same conversation from any container or format has the same key; its
  per-row stats (``n_tokens``, ``response_tokens``, used by token budgets) are cached with it.
* The folder's key (:func:`cache_options`) is the model hash, the feature options
  (:meth:`FeatureConfig.to_json <coreselect.features.config.FeatureConfig.to_json>`: kind,
  layers, pooling, span, max_length, ...; normalisation is applied when reading, never stored)
  and the precision the model ran in.
* Chunks are append-only: each is written to a temporary file and renamed, under a name no other
  writer uses, so concurrent runs, Ray actors and a crash mid-append leave only whole chunks (a
  record written twice is harmless: the first chunk in name order wins). A chunk that does not
  read back whole is skipped with a warning. Chunks are memory-mapped; a gather reads only the
  rows it needs.

:meth:`Executor.extract <coreselect.executor.Executor.extract>` fills a store's shards from the
cache (:func:`fill_from_cache`) before loading the model, and wraps the per-shard extraction
(:func:`cached_shard_function`) so that a shard with some cached rows extracts only the others.

Examples
--------
>>> import tempfile
>>> from coreselect.data import from_records
>>> ds = from_records([{"instruction": "Hi", "output": "Hello"}, {"instruction": "Q", "output": "A"}])
>>> cache = RecordCache(Path(tempfile.mkdtemp()))
>>> h = record_hashes(ds.examples)
>>> cache.append(h[:1], {"mlp.3": np.ones((1, 4)), "n_tokens": np.array([7])})
>>> cache.missing(h), cache.gather(h[:1])["n_tokens"].tolist()
([1], [7])
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.errors import StoreError
from coreselect.output import atomic_write_bytes
from coreselect.store import read_shard, to_store_dtypes
from coreselect.tensorfile import TensorSlot, read_header

if TYPE_CHECKING:
    from coreselect.data import Example
    from coreselect.features.config import FeatureConfig
    from coreselect.models import ModelSpec
    from coreselect.store import FeatureStore, ShardPlan

log = logging.getLogger(__name__)

RECORDS_FORMAT = "coreselect-records/1"
#: A folder for the record cache, or ``off`` (``0``, ``false``, ``no``) for none.
ENV = "CORESELECT_RECORD_CACHE"
HASHES = "__hash__"
_CHUNK_GLOB = "chunk-*.safetensors"
#: Temporary files of killed writers older than this are removed when a cache is opened.
_STALE_TMP_SECONDS = 3600.0


def record_hashes(examples: Sequence[Example]) -> list[bytes]:
    """The 32-byte content key of each example: sha256 of its normalised conversation.

    >>> from coreselect.data import from_records
    >>> a = from_records([{"instruction": "Hi", "input": "", "output": "Yo"}]).examples
    >>> b = from_records([{"messages": [{"role": "user", "content": "Hi"},
    ...                                 {"role": "assistant", "content": "Yo"}]}]).examples
    >>> record_hashes(a) == record_hashes(b)
    True
    """
    return [hashlib.sha256(json.dumps(ex.messages, ensure_ascii=False, separators=(",", ":")).encode()).digest()
            for ex in examples]


def model_precision(config: FeatureConfig) -> str:
    """The precision the features are computed in (a torch dtype name): the language model's as
    resolved on this machine (bf16 where native, else fp32), the sentence encoder's float32."""
    from coreselect.device import torch_dtype_name

    return torch_dtype_name(config.resolved_precision())


def cache_options(model: ModelSpec, config: FeatureConfig) -> dict[str, Any]:
    """What a cached row is the features of: everything but the record itself."""
    return {"format": RECORDS_FORMAT, "model": model.fingerprint, "config": config.to_json(),
            "precision": model_precision(config)}


def default_root() -> Path | None:
    """``$CORESELECT_RECORD_CACHE``, or ``<cache dir>/records``; None when turned off."""
    from coreselect.models import cache_dir

    env = os.environ.get(ENV)
    if env is not None and env.strip().lower() in ("", "0", "off", "false", "no"):
        return None
    return Path(env).expanduser() if env else cache_dir() / "records"


def open_record_cache(model: ModelSpec, config: FeatureConfig, where: bool | str | os.PathLike[str] = True, *,
                      create: bool = True) -> RecordCache | None:
    """The cache folder of ``model`` x ``config`` under ``where`` (True: :func:`default_root`;
    False: none), created if needed (with ``create=False``: None when it does not exist). An
    unusable folder is a warning and no cache, never an error."""
    base = default_root() if where is True else (None if where is False else Path(where))
    if base is None:
        return None
    opts = cache_options(model, config)
    key = hashlib.sha256(json.dumps(opts, sort_keys=True).encode()).hexdigest()
    root = base / key[:16]
    if not create and not (root / "options.json").is_file():
        return None
    try:
        path = root / "options.json"
        if path.is_file():
            if json.loads(path.read_text()).get("key") != key:
                log.warning("%s: a record cache of other options; not used", root)
                return None
        else:
            about = {"key": key, **opts, "model": model.to_json()}
            atomic_write_bytes(path, (json.dumps(about, indent=2, sort_keys=True) + "\n").encode())
        cache = RecordCache(root)
        if create:
            cache.remove_stale_temporaries()
        return cache
    except (OSError, ValueError, AttributeError) as err:
        log.warning("%s: record cache unusable (%s); extracting without it", root, err)
        return None


class RecordCache:
    """One folder of the record cache: append rows by content hash, look them up, gather them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._index: dict[bytes, tuple[int, int]] = {}  # hash -> (chunk, row)
        self._chunks: list[tuple[Path, dict[str, TensorSlot]]] = []  # mapped only while a gather reads them
        self._seen: set[str] = set()

    def __repr__(self) -> str:
        return f"RecordCache({str(self.root)!r})"

    def refresh(self) -> None:
        """Index the chunks written since the last refresh (by this or any other process)."""
        try:
            paths = sorted(p for p in self.root.glob(_CHUNK_GLOB) if p.name not in self._seen)
        except OSError:
            return
        for p in paths:
            self._seen.add(p.name)
            try:
                tensors = read_header(p)
                h = tensors.pop(HASHES)
                n = h.shape[0]
                if h.shape != (n, 32) or h.dtype != np.uint8 or any(t.shape[:1] != (n,) for t in tensors.values()):
                    raise ValueError("rows disagree")
                with open(p, "rb") as f:
                    f.seek(h.offset)
                    hashes = np.frombuffer(f.read(n * 32), dtype=np.uint8).reshape(n, 32)
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.warning("%s: unreadable record-cache chunk (%s); ignored (delete it)", p, err)
                continue
            i = len(self._chunks)
            self._chunks.append((p, tensors))
            for row, h in enumerate(hashes):
                self._index.setdefault(h.tobytes(), (i, row))

    def __contains__(self, h: object) -> bool:
        return h in self._index

    def missing(self, hashes: Sequence[bytes]) -> list[int]:
        """Positions in ``hashes`` whose rows the cache lacks (after a refresh)."""
        self.refresh()
        return [i for i, h in enumerate(hashes) if h not in self._index]

    def append(self, hashes: Sequence[bytes], arrays: dict[str, np.ndarray]) -> None:
        """Add rows (``arrays`` in row order, one row per hash) as one new chunk, atomically."""
        from safetensors.numpy import save

        if not len(hashes):
            return
        tensors = {HASHES: np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 32)}
        tensors.update(to_store_dtypes(arrays))
        name = f"chunk-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.safetensors"
        atomic_write_bytes(self.root / name, save(tensors, metadata={"format": RECORDS_FORMAT}))
        self.refresh()

    def gather(self, hashes: Sequence[bytes], fresh: dict[bytes, tuple[dict[str, np.ndarray], int]] | None = None
               ) -> dict[str, np.ndarray]:
        """The rows of ``hashes``, in that order, in the store's dtypes; ``fresh`` maps a hash to
        ``(arrays, row)`` held in memory (rows just extracted), used before the cache."""
        fresh = fresh or {}
        sources: dict[int, tuple[Any, list[int], list[int]]] = {}  # chunk (-1: fresh) -> positions, rows
        for pos, h in enumerate(hashes):
            if h in fresh:
                arrays, row = fresh[h]
                c = -1
            elif h in self._index:
                c, row = self._index[h]
                arrays = None
            else:
                raise StoreError(f"{self.root}: no cached features for record {pos}")
            _, positions, rows = sources.setdefault(c, (arrays, [], []))
            positions.append(pos)
            rows.append(row)
        out: dict[str, np.ndarray] = {}
        names: list[set[str]] = []
        for c, (arrays, positions, rows) in sources.items():
            if c >= 0:  # mapped for this read only: no file stays open between gathers
                path, tensors = self._chunks[c]
                arrays = {name: t.map(path) for name, t in tensors.items()}
            names.append(set(arrays))
            for name, a in arrays.items():
                if name not in out:
                    out[name] = np.empty((len(hashes), *a.shape[1:]), dtype=a.dtype)
                out[name][positions] = a[rows]
            del arrays
        if any(n != set(out) for n in names):
            raise StoreError(f"{self.root}: chunks hold different arrays; delete the folder")
        return out

    def adopt(self, store: FeatureStore, hashes: Sequence[bytes]) -> int:
        """Copy the rows of a complete ``store`` (e.g. one written before the cache existed) that
        the cache lacks into it; returns how many."""
        todo = _first_missing(self, hashes)
        if not todo:
            return 0
        names = store.groups + store.columns
        for plan in store.plan():
            rows = [i - plan.start for i in todo if plan.start <= i < plan.end]
            if rows:
                arrays = read_shard(store.root, plan, names)
                self.append([hashes[plan.start + r] for r in rows], {k: a[rows] for k, a in arrays.items()})
        log.info("%s: %d records added to the record cache %s", store.root, len(todo), self.root)
        return len(todo)

    def remove_stale_temporaries(self) -> None:
        """Temporary files of writers killed long ago (a live writer's are young)."""
        now = time.time()
        for p in self.root.glob(".chunk-*.tmp"):
            try:
                if now - p.stat().st_mtime > _STALE_TMP_SECONDS:
                    p.unlink()
            except OSError:
                pass


def _first_missing(cache: RecordCache, hashes: Sequence[bytes]) -> list[int]:
    """Positions of the first occurrence of each distinct hash the cache lacks."""
    seen: set[bytes] = set()
    out = []
    for i in cache.missing(hashes):
        if hashes[i] not in seen:
            seen.add(hashes[i])
            out.append(i)
    return out


def fill_from_cache(store: FeatureStore, pending: list[ShardPlan], hashes: Sequence[bytes], cache: RecordCache
                    ) -> tuple[list[ShardPlan], int, int]:
    """Write each pending shard whose records are all cached from the cache (no model needed).

    Returns the shards still pending, the number of distinct records in them to extract and the
    number of rows of ``pending`` the cache holds.
    """
    from coreselect.checkpoint import drop_partial

    cache.refresh()
    left = []
    cached = 0
    for plan in pending:
        hs = hashes[plan.start : plan.end]
        have = sum(h in cache for h in hs)
        cached += have
        if have == len(hs):
            store.write_shard(plan, cache.gather(hs))
            drop_partial(store, plan)
        else:
            left.append(plan)
    todo = {h for plan in left for h in hashes[plan.start : plan.end] if h not in cache}
    return left, len(todo), cached


ShardFn = Callable[..., dict[str, np.ndarray]]


def cached_shard_function(shard_fn: ShardFn, cache: RecordCache, hash_fn: Callable[[Sequence[Example]], list[bytes]]
                          = record_hashes) -> ShardFn:
    """``shard_fn`` extracting only the records ``cache`` lacks (each distinct one once), adding
    them to the cache, and returning the whole shard's arrays from both.

    Checkpoints (``resume``/``checkpoint``, when ``shard_fn`` takes them) keep positions in the
    shard, so a rerun resumes them whatever the cache gained meanwhile.
    """
    takes_checkpoint = "checkpoint" in inspect.signature(shard_fn).parameters

    def run(examples: Sequence[Example], resume: Any = None, checkpoint: Any = None) -> dict[str, np.ndarray]:
        hashes = hash_fn(examples)
        todo = _first_missing(cache, hashes)
        fresh: dict[bytes, tuple[dict[str, np.ndarray], int]] = {}
        if todo:
            kw: dict[str, Any] = {}
            if takes_checkpoint:
                at = np.asarray(todo, dtype=np.int64)
                kw["resume"] = _resume_of(resume, todo)
                if checkpoint is not None:
                    kw["checkpoint"] = lambda rows, arrays: checkpoint(at[rows], arrays)
            new = to_store_dtypes(shard_fn([examples[i] for i in todo], **kw))
            new_hashes = [hashes[i] for i in todo]
            fresh = {h: (new, j) for j, h in enumerate(new_hashes)}
            try:
                cache.append(new_hashes, new)
            except OSError as err:
                log.warning("%s: could not add %d records to the record cache (%s)", cache.root, len(todo), err)
        if todo and len(todo) == len(examples):
            return new
        return cache.gather(hashes, fresh)

    return run if takes_checkpoint else lambda examples: run(examples)


def _resume_of(resume: tuple[np.ndarray, dict[str, np.ndarray]] | None, todo: list[int]
               ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """A checkpoint (rows = positions in the shard) as positions among the rows to extract."""
    if resume is None:
        return None
    where = {r: j for j, r in enumerate(todo)}
    rows, arrays = resume
    keep = [k for k, r in enumerate(rows.tolist()) if r in where]
    if not keep:
        return None
    return np.array([where[int(rows[k])] for k in keep], dtype=np.int64), {n: a[keep] for n, a in arrays.items()}


def count_records(root: Path) -> int:
    """Rows held by one cache folder (duplicates across chunks counted once each time seen)."""
    total = 0
    for p in root.glob(_CHUNK_GLOB):
        try:
            total += read_header(p)[HASHES].shape[0]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return total


__all__ = ["ENV", "RecordCache", "cache_options", "cached_shard_function", "default_root", "fill_from_cache",
           "model_precision", "open_record_cache", "record_hashes"]
