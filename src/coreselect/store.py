"""The feature store: sharded float16 safetensors files plus a JSON manifest.

Layout of a store directory::

    manifest.json            what was extracted, from which data and model; "complete" at the end
    shard-00000.safetensors  rows [0, shard_rows): one tensor per feature group + per-row stats
    shard-00001.safetensors  ...

Shards cover fixed row ranges of the input, so any executor (this process, a Ray actor pool)
can write any shard; each is written to a temporary file and renamed, so a shard file that
exists is complete. A rerun skips the shards already there (resume after a crash or Ctrl-C).
Reads go through ``safetensors`` (memory-mapped, never pickle).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.data import atomic_write_bytes
from coreselect.errors import StoreError

log = logging.getLogger(__name__)

STORE_FORMAT = "coreselect-features/1"
_SHARD_RE = re.compile(r"^shard-(\d{5})\.safetensors$")
#: Per-row statistics stored next to the features (int32).
ROW_STATS = ("n_tokens", "prompt_tokens", "response_tokens", "truncated")


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
    """A directory of feature shards. Create with :meth:`create` or open with :meth:`open`."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = manifest

    # -- creation and resume ---------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike[str], manifest: dict[str, Any]) -> FeatureStore:
        """Open ``root`` for writing; resume if it holds a store of the same key.

        ``manifest`` must hold ``key`` (what identifies the content), ``n_rows`` and
        ``shard_rows``. A directory with a different key is refused, never overwritten.
        """
        root = Path(root)
        path = root / "manifest.json"
        if path.exists():
            old = _read_manifest(path)
            if old.get("key") != manifest["key"]:
                raise StoreError(
                    f"{root}: holds features of other data, model or options "
                    f"(key {old.get('key', '?')[:12]} != {manifest['key'][:12]}); "
                    "use another directory or delete it"
                )
            store = cls(root, old)
            done = len(store.finished_shards())
            if done:
                log.info("%s: resuming, %d of %d shards already done", root, done, len(store.plan()))
            return store
        if root.exists() and any(root.iterdir()):
            raise StoreError(f"{root}: exists and is not a feature store; use an empty directory")
        root.mkdir(parents=True, exist_ok=True)
        m = {"format": STORE_FORMAT, "complete": False, **manifest}
        atomic_write_bytes(path, _dumps(m))
        return cls(root, m)

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, require_complete: bool = True) -> FeatureStore:
        root = Path(root)
        path = root / "manifest.json"
        if not path.is_file():
            raise StoreError(f"{root}: not a feature store (no manifest.json)")
        m = _read_manifest(path)
        if m.get("format") != STORE_FORMAT:
            raise StoreError(f"{path}: unknown store format {m.get('format')!r}")
        store = cls(root, m)
        if require_complete and not m.get("complete"):
            missing = len(store.plan()) - len(store.finished_shards())
            raise StoreError(f"{root}: extraction not finished ({missing} shards missing); rerun extract to resume")
        return store

    def plan(self) -> list[ShardPlan]:
        return plan_shards(self.manifest["n_rows"], self.manifest["shard_rows"])

    def finished_shards(self) -> set[int]:
        return {int(m.group(1)) for p in self.root.iterdir() if (m := _SHARD_RE.match(p.name))}

    def pending(self) -> list[ShardPlan]:
        done = self.finished_shards()
        return [s for s in self.plan() if s.shard not in done]

    def write_shard(self, plan: ShardPlan, arrays: dict[str, np.ndarray]) -> None:
        """Write one shard atomically (features as float16, stats as int32)."""
        from safetensors.numpy import save

        n = plan.end - plan.start
        tensors = {}
        for name, a in arrays.items():
            if a.shape[0] != n:
                raise StoreError(f"shard {plan.shard}: {name} has {a.shape[0]} rows, expected {n}")
            if name in ROW_STATS:
                tensors[name] = np.ascontiguousarray(a, dtype=np.int32)
            else:
                f = np.clip(a, -65000.0, 65000.0)  # float16 range: never store inf
                tensors[name] = np.ascontiguousarray(f, dtype=np.float16)
        atomic_write_bytes(self.root / plan.filename, save(tensors, metadata={"start": str(plan.start)}))

    def finalize(self, **extra: Any) -> None:
        """Mark the store complete once every shard exists; record dims and statistics."""
        missing = self.pending()
        if missing:
            raise StoreError(f"{self.root}: {len(missing)} shards missing, cannot finalise")
        from safetensors import safe_open

        with safe_open(str(self.root / self.plan()[0].filename), framework="np") as f:
            dims = {k: int(f.get_slice(k).get_shape()[1]) for k in f.keys() if k not in ROW_STATS}
        self.manifest.update({"complete": True, "dims": dims, **extra})
        atomic_write_bytes(self.root / "manifest.json", _dumps(self.manifest))

    # -- reading ---------------------------------------------------------------------------
    @property
    def groups(self) -> list[str]:
        return list(self.manifest.get("dims", {}))

    def load(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Read feature groups (float16) and row stats (int32) for all rows, in row order."""
        from safetensors import safe_open

        plan = self.plan()
        names = names or self.groups + [s for s in ROW_STATS]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
        for sp in plan:
            path = self.root / sp.filename
            try:
                with safe_open(str(path), framework="np") as f:
                    for k in names:
                        a = f.get_tensor(k)
                        if a.shape[0] != sp.end - sp.start:
                            raise StoreError(f"{path}: {k} has {a.shape[0]} rows, expected {sp.end - sp.start}")
                        parts[k].append(a)
            except (OSError, ValueError, KeyError) as err:
                raise StoreError(f"{path}: unreadable shard ({err})") from None
            except Exception as err:  # safetensors raises its own error type on corruption
                raise StoreError(f"{path}: corrupted shard ({type(err).__name__}: {err})") from None
        return {k: np.concatenate(v) for k, v in parts.items()}


def _dumps(m: dict[str, Any]) -> bytes:
    return (json.dumps(m, indent=2, sort_keys=True) + "\n").encode()


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: unreadable manifest ({err})") from None
    if not isinstance(m, dict) or "n_rows" not in m or "shard_rows" not in m:
        raise StoreError(f"{path}: not a feature-store manifest")
    return m
