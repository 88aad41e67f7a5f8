"""A feature store's ``manifest.json``: :class:`StoreManifest`, its one reader and writer.

What a store holds, as written next to its shards (:mod:`coreselect.store`)::

    {"format": "coreselect-features/1", "key": "<sha256>", "n_rows": 240, "shard_rows": 512,
     "complete": true, "data": {...}, "model": {...}, "config": {...}, "precision": "bf16",
     "dims": {"mlp.15": 1536}, "scores": [...], "stats": {"tokens": ..., ...}}

``key``, ``n_rows`` and ``shard_rows`` are what every store has (they decide which shard files
are read, so they are checked: a tampered manifest is a one-line :class:`StoreError`); the rest
appear when written (``dims`` and ``stats`` when the store is complete, ``scores`` with
``--scores``). Keys this version does not know are kept as they are (``extra``) and written back,
so a store written by another version stays readable and keeps its manifest.

:func:`peek` reads a manifest as written, unchecked (is there a store here, of which key);
:func:`mismatch` says why a store holds other features than those asked for.

Examples
--------
>>> m = StoreManifest(key="k", n_rows=3, shard_rows=2)
>>> m.n_shards, m["n_rows"], StoreManifest.from_json(m.to_json()) == m
(2, 3, True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from coreselect.errors import StoreError
from coreselect.output import atomic_write_bytes

STORE_FORMAT = "coreselect-features/1"
#: The manifest's file name inside a store directory.
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StoreManifest(Mapping[str, Any]):
    """What a feature store holds: the typed view of its ``manifest.json``.

    ``data``, ``model`` and ``config`` are what :func:`coreselect.features.extract.open_store`
    records (as written; an old or odd ``data`` may be a bare fingerprint); ``dims`` maps each
    feature group to its width and ``stats`` holds the token and truncation counts, both written
    when the store is complete; ``scores`` the per-row score columns it holds; ``extra`` every
    key this version does not know. A field that is None is absent from the file.

    It also reads as the mapping of its JSON (``m["n_rows"]``, ``m.get("stats")``), as the
    manifest did when it was a dict.
    """

    key: str
    n_rows: int
    shard_rows: int
    format: str | None = STORE_FORMAT
    complete: bool = False
    data: dict[str, Any] | str | None = None
    model: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    precision: str | None = None
    dims: dict[str, int] | None = None
    scores: tuple[str, ...] | None = None
    stats: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # -- JSON ------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, m: Any, where: str = MANIFEST) -> StoreManifest:
        """The manifest of the JSON object ``m``, checked (``where`` names it in errors): the
        fields that decide which files are read must be what they claim to be."""
        if not isinstance(m, Mapping) or "n_rows" not in m or "shard_rows" not in m:
            raise StoreError(f"{where}: not a feature-store manifest")
        for name in ("n_rows", "shard_rows"):
            v = m.get(name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise StoreError(f'{where}: field "{name}": must be a positive integer, got {v!r}')
        if not isinstance(m.get("key"), str):
            raise StoreError(f'{where}: field "key": must be a string')
        dims = m.get("dims", {})
        if not isinstance(dims, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in dims.values()):
            raise StoreError(f'{where}: field "dims": must map group names to integers')
        scores = m.get("scores", [])
        if not isinstance(scores, list) or not all(isinstance(v, str) for v in scores):
            raise StoreError(f'{where}: field "scores": must be a list of column names')
        known = _FIELDS & set(m)
        values: dict[str, Any] = {k: m[k] for k in known}
        values["format"] = m.get("format")  # absent: not a store this version reads (open() says so)
        values["complete"] = bool(m.get("complete", False))
        if "dims" in values:
            values["dims"] = dict(dims)
        if "scores" in values:
            values["scores"] = tuple(scores)
        return cls(**values, extra={k: v for k, v in m.items() if k not in _FIELDS})

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``manifest.json`` (fields that are None left out)."""
        out = dict(self.extra)
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name != "extra" and v is not None:
                out[f.name] = list(v) if f.name == "scores" else v
        return out

    def dumps(self) -> bytes:
        """The bytes of ``manifest.json`` (sorted keys, indented: the same bytes as ever)."""
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def read(cls, root: str | os.PathLike[str]) -> StoreManifest:
        """The checked manifest of the store at ``root``; a one-line :class:`StoreError` when it
        is unreadable or not a feature-store manifest."""
        path = Path(root) / MANIFEST
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise StoreError(f"{path}: unreadable manifest ({err})") from None
        return cls.from_json(m, str(path))

    def write(self, root: str | os.PathLike[str]) -> None:
        """Write ``<root>/manifest.json`` atomically."""
        atomic_write_bytes(Path(root) / MANIFEST, self.dumps())

    def updated(self, **changes: Any) -> StoreManifest:
        """A copy with ``changes``: fields set, other keys added to ``extra``.

        >>> StoreManifest(key="k", n_rows=1, shard_rows=1).updated(complete=True, note="x").to_json()["note"]
        'x'
        """
        extra = {k: v for k, v in changes.items() if k not in _FIELDS}
        known = {k: v for k, v in changes.items() if k in _FIELDS}
        return replace(self, **known, extra={**self.extra, **extra} if extra else self.extra)

    # -- what callers ask ------------------------------------------------------------------------
    @property
    def n_shards(self) -> int:
        """How many shards the plan has (counted, never listed: a tampered ``n_rows`` stays cheap)."""
        return -(-self.n_rows // self.shard_rows)

    @property
    def groups(self) -> list[str]:
        """The feature groups (empty until the store is complete)."""
        return list(self.dims or {})

    @property
    def data_path(self) -> str | None:
        return _part(self.data).get("path")

    @property
    def data_fingerprint(self) -> str | None:
        return _part(self.data).get("fingerprint")

    # -- read as the dict it was ----------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        return self.to_json()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


_FIELDS = frozenset(f.name for f in fields(StoreManifest)) - {"extra"}


def peek(root: str | os.PathLike[str], *, errors: str = "none") -> dict[str, Any] | None:
    """The manifest of the store at ``root`` as written, without checking it or its shards.

    For a look before deciding (is there a store here, is it complete, of which key):
    :meth:`FeatureStore.open <coreselect.store.FeatureStore.open>` and ``create`` check what they
    read (:meth:`StoreManifest.read`). None when there is no ``manifest.json``; when it is
    unreadable or not a JSON object, None too, or with ``errors="raise"`` the
    ``OSError``/``ValueError`` (for a caller that reports the cause).

    >>> import tempfile
    >>> peek(tempfile.mkdtemp()) is None
    True
    """
    path = Path(root) / MANIFEST
    try:
        m = json.loads(path.read_text())
        if not isinstance(m, dict):
            raise ValueError(f"{path}: not a JSON object")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        if errors == "raise":
            raise
        return None
    return m


def _part(value: Any) -> dict[str, Any]:
    """A manifest's ``data`` or ``model`` entry as a dict (an old or odd one may be a bare fingerprint)."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"fingerprint": value}


@dataclass(frozen=True)
class Mismatch:
    """Why a store holds other features than those asked for: what :func:`mismatch` found.

    ``data``/``model``: their fingerprints differ; ``options``: the feature options that differ
    (None when either side's options are not a mapping, so cannot be compared one by one).
    ``str()`` says it as a store being created or resumed does; :meth:`explain` as a selection on
    an existing store (``--features-dir``) does, naming the ``--model`` to pass.
    """

    stored: Mapping[str, Any]
    want: Mapping[str, Any]
    data: bool
    model: bool
    options: tuple[str, ...] | None

    def _sides(self, key: str) -> tuple[Any, Any]:
        return self.stored.get(key) or {}, self.want.get(key) or {}

    def __str__(self) -> str:
        parts = []
        for key in ("data", "model"):
            if getattr(self, key):
                a, b = (_part(x) for x in self._sides(key))
                name = f"{a['path']}, " if a.get("path") else ""
                parts.append(f"other {key} (stored: {name}{str(a.get('fingerprint'))[:19]}; "
                             f"now: {str(b.get('fingerprint'))[:19]})")
        a, b = self._sides("config")
        if self.options is None:
            parts.append("other options")
        elif self.options:
            parts.append("other options (" + ", ".join(f"{k} {a.get(k)!r} != {b.get(k)!r}" for k in self.options) + ")")
        return "; ".join(parts) or (f"other data, model or options (key {str(self.stored.get('key'))[:12]} "
                                    f"!= {str(self.want.get('key'))[:12]})")

    def explain(self) -> str:
        parts = []
        if self.data:
            a, b = (_part(x) for x in self._sides("data"))
            parts.append(f"other data (stored: {a.get('path')}, {str(a.get('fingerprint'))[:15]}; now: {b.get('path')}, "
                         f"{str(b.get('fingerprint'))[:15]})")
        if self.model:
            a, b = (_part(x) for x in self._sides("model"))
            parts.append(f"another model (stored: {a.get('name')}; now: {b.get('name')}; pass --model {a.get('name')})")
        a, b = self._sides("config")
        if self.options is None:
            parts.append("other feature options")
        elif self.options:
            parts.append("other feature options (" + "; ".join(
                f"{k}: stored {json.dumps(a.get(k))}, now {json.dumps(b.get(k))}" for k in self.options) + ")")
        return "; ".join(parts) or "another extraction (its key differs)"


def mismatch(stored: Mapping[str, Any], want: Mapping[str, Any]) -> Mismatch | None:
    """Why the store whose manifest is ``stored`` (a :class:`StoreManifest` or the dict
    :func:`peek` returns) does not hold the features ``want`` describes (``key``, ``data``,
    ``model``, ``config`` as :func:`coreselect.features.extract.open_store` records them); None
    when the keys match. The one place that says how two stores differ.

    >>> old = {"key": "a", "data": {"fingerprint": "sha256:1", "path": "a.jsonl"},
    ...        "model": {"name": "m", "fingerprint": "x"}, "config": {"layers": [15]}}
    >>> m = mismatch(old, {**old, "key": "b", "config": {"layers": [8]}})
    >>> str(m), m.explain()
    ('other options (layers [15] != [8])', 'other feature options (layers: stored [15], now [8])')
    >>> mismatch(old, old) is None
    True
    """
    if stored.get("key") == want.get("key"):
        return None
    differs = {key: _part(stored.get(key) or {}).get("fingerprint") != _part(want.get(key) or {}).get("fingerprint")
               for key in ("data", "model")}
    a, b = stored.get("config") or {}, want.get("config") or {}
    if isinstance(a, dict) and isinstance(b, dict):
        options: tuple[str, ...] | None = tuple(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
    else:
        options = None if a != b else ()
    return Mismatch(stored, want, differs["data"], differs["model"], options)


__all__ = ["MANIFEST", "STORE_FORMAT", "Mismatch", "StoreManifest", "mismatch", "peek"]
