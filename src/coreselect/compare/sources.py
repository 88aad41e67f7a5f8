"""Where a ``compare`` YAML's data come from: a local file, a Hugging Face dataset id, or both.

A data source (``pool.path``, ``eval[i].path``, ``build.source``) is a path (relative to the YAML
file), a Hub dataset id (``owner/name[:split]``: fetched into the Hugging Face cache when online,
read from that cache offline), or a list of them tried in order: the first local file that
exists, else the first id. With ``CORESELECT_DATA=DIR`` set, ``DIR/<file name>`` is tried before
each local file. So the presets read ``../shared/data/...`` where it exists (the evidence runs,
CI) and a public copy elsewhere::

    pool: {path: [../../shared/data/alpaca_cleaned.jsonl.gz, yahma/alpaca-cleaned], limit: 1000}

Whether the chosen source can be read is checked before ``compare`` creates anything
(:func:`check_available`); when it cannot, one line names the YAML key and what to do.

Examples
--------
>>> candidates("pool.path", ["data/a.jsonl", "yahma/alpaca-cleaned"], Path("/cfg"), env={})
['/cfg/data/a.jsonl', 'yahma/alpaca-cleaned']
>>> choose(['/no/such/a.jsonl', 'yahma/alpaca-cleaned'])
'yahma/alpaca-cleaned'
>>> print(missing("build.source", ["/no/such/t0.jsonl.gz"]))
build.source: /no/such/t0.jsonl.gz not found: point build.source at a local copy, or set CORESELECT_DATA to the folder holding t0.jsonl.gz
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coreselect.errors import ConfigError

#: A folder searched first for each local data file, by file name.
ENV = "CORESELECT_DATA"


def is_hub_id(value: str, base: Path) -> bool:
    """A value read as a Hub dataset id: id-shaped, no data-file suffix, no local file of that name."""
    from coreselect.hub import looks_like_id
    from coreselect.readers import container_of

    return (looks_like_id(value) and container_of(value) is None and not value.startswith((".", "~"))
            and not (base / value).exists())


def candidates(key: str, value: Any, base: Path, *, env: Mapping[str, str] | None = None) -> list[str]:
    """The sources to try for ``value`` (a string or a list): local files as absolute paths
    (``$CORESELECT_DATA/<name>`` first when set), Hub ids as given."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{key}: expected a data file, a Hugging Face dataset id or a list of them "
                          f"(tried in order), got {value!r}")
    folder = (os.environ if env is None else env).get(ENV)
    out: list[str] = []
    for v in values:
        if is_hub_id(v, base):
            out.append(v)
            continue
        if folder:
            out.append(str((Path(folder).expanduser() / Path(v).name).resolve()))
        p = Path(v).expanduser()
        out.append(str((p if p.is_absolute() else base / p).resolve()))
    return list(dict.fromkeys(out))


def choose(cands: list[str]) -> str:
    """The first local file that exists, else the first Hub id, else the last local file (the
    YAML's own, to be reported missing by :func:`check_available`)."""
    local = [c for c in cands if os.path.isabs(c)]
    return next((c for c in local if Path(c).exists()), None) or next(
        (c for c in cands if not os.path.isabs(c)), local[-1] if local else cands[0])


def missing(key: str, cands: list[str]) -> str:
    """The one-line message for a source none of whose candidates can be read."""
    local = [c for c in cands if os.path.isabs(c)]
    ids = [c for c in cands if not os.path.isabs(c)]
    found = []
    if local:
        found.append(f"{' nor '.join(local)} not found")
    if ids:
        found.append(f"{' nor '.join(ids)} not in the local Hugging Face cache and the Hub unreachable "
                     "(or HF_HUB_OFFLINE set)")
    todo = ["run once online to fetch it into the cache"] if ids else []
    todo.append(f"point {key} at a local copy")
    if local:
        todo.append(f"set {ENV} to the folder holding {Path(local[-1]).name}")
    return f"{key}: {'; '.join(found)}: {', '.join(todo[:-1])}{', or ' if len(todo) > 1 else ''}{todo[-1]}"


def check_available(sources: Mapping[str, tuple[str, list[str]]]) -> None:
    """A one-line :class:`ConfigError` naming the YAML key of the first source that cannot be
    read: a local file that is missing, or a Hub id neither cached nor reachable.
    ``sources`` maps each key to ``(chosen, candidates)``."""
    from coreselect import hub

    reachable: bool | None = None
    for key, (chosen, cands) in sources.items():
        if os.path.isabs(chosen):
            ok = Path(chosen).exists()
        else:
            ok = hub.cached_locally(hub.split_id(chosen)[0])
            if not ok:
                reachable = hub.hub_reachable() if reachable is None else reachable
                ok = reachable
        if not ok:
            raise ConfigError(missing(key, cands))


__all__ = ["ENV", "candidates", "check_available", "choose", "is_hub_id", "missing"]
