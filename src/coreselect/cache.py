"""What coreselect keeps in its cache directory, and removing it safely.

The cache (``$CORESELECT_CACHE`` or ``~/.cache/coreselect``, :func:`coreselect.models.cache_dir`)
holds:

========================  ==============================================================
``features/<key>/``       feature stores of ``coreselect select`` (one per data x model x
                          feature options; ``--work-dir`` puts them elsewhere)
``records/<key>/``        the record cache: each record's features by content, one folder
                          per model x feature options (:mod:`coreselect.recordcache`;
                          ``$CORESELECT_RECORD_CACHE`` puts it elsewhere)
``models/<name>-<hash>/`` GGUF models converted once into Hugging Face folders
``gguf/``                 GGUF files assembled from chunk packages (gemma3-270m)
``lm_tasks/``             evaluation task files converted once (``evaluate --tasks``)
``hashes.json``           sha256 of large files, by path, size and mtime
========================  ==============================================================

:func:`cache_entries` lists them with their sizes (a store also with what it holds), and
:func:`remove_entries` deletes entries: only the names above, only inside the cache directory;
a symbolic link is removed, never what it points to.

Examples
--------
>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "models" / "m-123").mkdir(parents=True)
>>> _ = (root / "models" / "m-123" / "model.safetensors").write_bytes(b"x" * 10)
>>> [(e.kind, e.name, e.size) for e in cache_entries(root)]
[('models', 'm-123', 10)]
>>> remove_entries(cache_entries(root, kinds=("models",)), root)
(1, 10)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coreselect.errors import ConfigError

log = logging.getLogger(__name__)

#: The cache's sections: kind -> sub-folder (``None``: a file at the top).
SECTIONS = {"features": "features", "records": "records", "models": "models", "gguf": "gguf", "lm_tasks": "lm_tasks"}
#: What ``--features`` removes: the stores and the record cache.
FEATURE_KINDS = ("features", "records")
#: Loose files of the cache (removed with ``--all``).
FILES = ("hashes.json",)
#: What ``--models`` removes: converted models and assembled GGUF files.
MODEL_KINDS = ("models", "gguf")


@dataclass(frozen=True)
class CacheEntry:
    """One thing in the cache: its section, name, path, size in bytes and, for a feature store,
    what it holds (``info``: data path, model, feature config, rows, complete)."""

    kind: str
    name: str
    path: Path
    size: int
    info: dict[str, Any] | None = None

    def describe(self) -> str:
        """One line about a feature store or a record-cache folder (``""`` for anything else)."""
        if self.info is None:
            return ""
        i = self.info
        if "error" in i:
            return f"unreadable {'record cache' if self.kind == 'records' else 'store'} ({i['error']})"
        if self.kind == "records":
            cfg = i.get("config") or {}
            return (f"{i.get('n_rows', '?')} records' features; model {i.get('model', '?')}; {cfg.get('kind', '?')} "
                    f"of layers {','.join(map(str, cfg.get('layers') or []))}, {cfg.get('pooling', '?')} pooling, "
                    f"{i.get('precision', '?')}")
        from coreselect.features.kinds import find_kind

        cfg = i.get("config") or {}
        what = cfg.get("kind", "?")
        kind = find_kind(what) if isinstance(what, str) else None
        if kind is None or kind.layered:  # layers and pooling describe its features
            what += f" of layers {','.join(map(str, cfg.get('layers') or []))}, {cfg.get('pooling', '?')} pooling"
        dims = sum(v for v in (i.get("dims") or {}).values() if isinstance(v, int))
        what += f" ({dims} dims)" if dims else ""
        data = i.get("data") or "?"
        gone = "" if i.get("data_exists") else " (gone)"
        state = "complete" if i.get("complete") else "incomplete (resumable)"
        return f"{i.get('n_rows', '?')} rows of {data}{gone}; model {i.get('model', '?')}; {what}; {state}"


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):  # os.walk does not follow links into folders
        for f in files:
            try:
                total += (Path(dirpath) / f).lstat().st_size
            except OSError:
                pass
    return total


def _store_info(path: Path) -> dict[str, Any]:
    from coreselect.store_manifest import peek

    try:
        m = peek(path, errors="raise")
        if m is None:
            raise FileNotFoundError(path / "manifest.json")
        data = (m.get("data") or {}).get("path")
        return {"data": data, "data_exists": bool(data) and Path(data).exists(),
                "data_fingerprint": (m.get("data") or {}).get("fingerprint"),
                "model": (m.get("model") or {}).get("name"), "config": m.get("config") or {},
                "dims": m.get("dims") or {}, "n_rows": m.get("n_rows"), "complete": bool(m.get("complete"))}
    except (OSError, ValueError, AttributeError) as err:
        return {"error": type(err).__name__}


def _records_info(path: Path) -> dict[str, Any]:
    from coreselect.recordcache import count_records

    try:
        m = json.loads((path / "options.json").read_text())
        return {"model": (m.get("model") or {}).get("name"), "config": m.get("config") or {},
                "precision": m.get("precision"), "n_rows": count_records(path)}
    except (OSError, ValueError, AttributeError) as err:
        return {"error": type(err).__name__}


def cache_entries(root: str | os.PathLike[str] | None = None, *, kinds: Sequence[str] | None = None
                  ) -> list[CacheEntry]:
    """Everything in the cache ``root`` (default: :func:`~coreselect.models.cache_dir`), by
    section then name; ``kinds`` restricts the sections (and ``"files"`` the loose files)."""
    from coreselect.models import cache_dir

    base = Path(root) if root is not None else cache_dir()
    out = []
    for kind, folder in SECTIONS.items():
        if kinds is not None and kind not in kinds:
            continue
        d = base / folder
        if not d.is_dir() or d.is_symlink():
            continue
        for p in sorted(d.iterdir()):
            info = None
            if kind in FEATURE_KINDS and p.is_dir() and not p.is_symlink():
                info = _store_info(p) if kind == "features" else _records_info(p)
            out.append(CacheEntry(kind, p.name, p, _size(p), info))
    if kinds is None or "files" in kinds:
        out += [CacheEntry("files", n, base / n, _size(base / n)) for n in FILES if (base / n).exists()]
    return out


def _inside(path: Path, base: Path) -> bool:
    """Whether ``path`` itself (not what a link points to) lies strictly inside ``base``."""
    parent = path.parent.resolve()
    root = base.resolve()
    return (parent == root or root in parent.parents) and path.name not in ("", ".", "..")


def remove_entries(entries: Iterable[CacheEntry], root: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """Delete ``entries`` of the cache ``root``; returns ``(entries removed, bytes freed)``.

    An entry whose path is not inside ``root`` is refused (:class:`ConfigError`) before
    anything is deleted; a link is unlinked, its target left alone.
    """
    from coreselect.models import cache_dir

    base = Path(root) if root is not None else cache_dir()
    entries = list(entries)
    outside = [e.path for e in entries if not _inside(e.path, base)]
    if outside:
        raise ConfigError(f"{outside[0]}: not inside the cache directory {base}; nothing removed")
    n = freed = 0
    for e in entries:
        p = e.path
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        elif p.is_dir():
            shutil.rmtree(p)
        else:
            continue
        log.debug("removed %s", p)
        n, freed = n + 1, freed + e.size
    return n, freed


def human_size(n: float) -> str:
    """``1536`` -> ``'1.5 KB'``.

    >>> human_size(0), human_size(1536), human_size(3 * 1024 ** 3)
    ('0 B', '1.5 KB', '3.0 GB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


__all__ = ["FEATURE_KINDS", "CacheEntry", "cache_entries", "human_size", "remove_entries"]
