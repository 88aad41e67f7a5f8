"""Hugging Face dataset ids as data: ``owner/name`` or ``owner/name:split``, via ``datasets.load_dataset``.

Works offline from the local cache. The Hub is probed once with a one-second TCP connect; when it
cannot be reached (or ``HF_HUB_OFFLINE`` is set), an id that is not in the local cache fails at
once with one line, before ``datasets`` is even imported, and a cached one is loaded with
``datasets``' offline mode on, so that no request is retried.

Examples
--------
>>> looks_like_id("tatsu-lab/alpaca"), looks_like_id("tatsu-lab/alpaca:train[:1000]"), looks_like_id("./a/b")
(True, True, False)
>>> split_id("tatsu-lab/alpaca:test")
('tatsu-lab/alpaca', 'test')
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from coreselect.errors import DataError

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?(:[\w.+%\[\]:-]+)?$")
_TRUE = {"1", "ON", "YES", "TRUE"}


def looks_like_id(source: str) -> bool:
    """Whether ``source`` has the shape of a Hub dataset id (``name``, ``owner/name``, optional ``:split``)."""
    return bool(_ID.match(source))


def split_id(source: str) -> tuple[str, str | None]:
    """``("owner/name", "split")`` from ``owner/name:split``; the split is None when not given."""
    name, sep, split = source.partition(":")
    return name, (split if sep else None)


def hub_reachable(timeout: float = 1.0) -> bool:
    """False when ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set or the Hub's host does not
    answer a TCP connect within ``timeout`` seconds (DNS included)."""
    if any(os.environ.get(v, "").upper() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def cache_dirs() -> tuple[Path, Path]:
    """``(datasets cache, hub cache)`` as ``datasets`` and ``huggingface_hub`` resolve them."""
    if "datasets" in sys.modules:  # already imported: its (possibly patched) settings win
        import datasets

        ds_cache = Path(datasets.config.HF_DATASETS_CACHE)
    else:
        home = Path(os.environ.get("HF_HOME") or Path("~/.cache/huggingface").expanduser())
        ds_cache = Path(os.environ.get("HF_DATASETS_CACHE") or home / "datasets")
    home = Path(os.environ.get("HF_HOME") or Path("~/.cache/huggingface").expanduser())
    hub_cache = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or home / "hub")
    return ds_cache.expanduser(), hub_cache.expanduser()


def cached_locally(name: str) -> bool:
    """Whether ``datasets`` (prepared Arrow files) or ``huggingface_hub`` (raw files) holds ``name``."""
    ds_cache, hub_cache = cache_dirs()
    parts = name.split("/")
    forms = {"___".join(parts), "___".join([*parts[:-1], _snake(parts[-1])])}
    return (any((ds_cache / f).is_dir() for f in forms)
            or (hub_cache / ("datasets--" + name.replace("/", "--"))).is_dir())


def _snake(name: str) -> str:
    """``datasets``' folder name for a dataset name (``SlimOrca`` -> ``slim_orca``)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def load(source: str) -> tuple[list[dict[str, Any]], str]:
    """The records of a Hub dataset id and a fingerprint of their prepared Arrow files.

    Without ``:split``: the ``train`` split, or the only one.
    """
    name, split = split_id(source)
    online = hub_reachable()
    if not online and not cached_locally(name):
        raise DataError(source, "no such file, and no Hugging Face dataset of that name in the local cache "
                                "(the Hub is unreachable or HF_HUB_OFFLINE is set)")
    try:
        import datasets
    except ImportError:
        raise DataError(source, "no such file; to read it as a Hugging Face dataset id, pip install datasets") from None
    with _hub_mode(offline=not online):
        try:
            obj = datasets.load_dataset(name, split=split)
        except Exception as err:  # noqa: BLE001 -- any failure of the Hub or the cache is one line
            first = (str(err).strip().splitlines() or [""])[0]
            raise DataError(source, f"no such file, and cannot load it as a Hugging Face dataset "
                                    f"({type(err).__name__}: {first})") from None
    if isinstance(obj, datasets.DatasetDict):
        splits = list(obj)
        pick = "train" if "train" in splits else splits[0] if len(splits) == 1 else None
        if pick is None:
            raise DataError(source, f"has the splits {', '.join(splits)}: name one, e.g. {name}:{splits[0]}")
        log.info("%s: reading the %r split", name, pick)
        obj = obj[pick]
    if not isinstance(obj, datasets.Dataset):
        raise DataError(source, f"is a {type(obj).__name__}, not a datasets.Dataset")
    log.info("%s: %d records from the %s", source, len(obj), "Hub" if online else "local Hugging Face cache")
    return obj.to_list(), _fingerprint(obj)


def _fingerprint(obj: Any) -> str:
    files = [f["filename"] for f in obj.cache_files]
    if not files:
        return "hf:" + str(obj._fingerprint)
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return "sha256:" + h.hexdigest()


@contextlib.contextmanager
def _hub_mode(*, offline: bool) -> Iterator[None]:
    """``datasets`` quiet (its own warnings and bars) and, when ``offline``, in offline mode."""
    import datasets
    import huggingface_hub.constants as hub_constants

    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE,
             datasets.utils.logging.get_verbosity(), not datasets.utils.are_progress_bars_disabled())
    if offline:
        datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    datasets.utils.logging.set_verbosity_error()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved[0], saved[1]
        datasets.utils.logging.set_verbosity(saved[2])
        if saved[3]:
            datasets.utils.enable_progress_bars()


__all__ = ["cache_dirs", "cached_locally", "hub_reachable", "load", "looks_like_id", "split_id"]
